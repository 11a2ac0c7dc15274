//! The typed model of a `#[workflow]` impl block: its steps, their signatures and attributes.

use proc_macro2::Span;
use syn::visit_mut::VisitMut;
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::attr::{StepAttr, StepKind};
use crate::ctxt::Errors;

/// One `#[step]`/`#[saga_step]` method.
pub struct Step {
    /// The method's name, used in `after` lists.
    pub ident: Ident,
    /// The stable name (`name = ".."` or the method name).
    pub name: String,
    pub attr: StepAttr,
    /// True when the method takes a leading `&StepContext`.
    pub takes_context: bool,
    /// Input parameter types (after `&self` and the optional context).
    pub inputs: Vec<Type>,
    /// Span of the parameter list, for arity errors.
    pub params_span: Span,
    /// The output type: `T` of `Result<T, E>`, or the plain return type.
    pub output: Type,
    /// True when the method returns a `Result`.
    pub fallible: bool,
    /// How its error becomes a `StepError`.
    pub error: ErrorConversion,
    /// Span of the return type, for errors about it.
    pub ret_span: Span,
    /// A trailing `name: Signal<T>` parameter: the step waits for signal `name`.
    pub signal: Option<SignalParam>,
    /// The span of the method's body; `None` for a method declared without one (`;`), as a
    /// `workflow = Child` step is.
    pub body: Option<Span>,
}

/// How a fallible step's error becomes a `StepError`, read from the return type as written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ErrorConversion {
    /// `Into<StepError>`: `StepError` itself, or any `std::error::Error + Send + Sync`.
    Into,
    /// `Box<dyn Error + Send + Sync>`: `StepError::from_boxed`, keeping its concrete type.
    Boxed,
    /// `anyhow::Result<T>` / `Result<T, anyhow::Error>`: `StepError::from_anyhow`.
    Anyhow,
}

/// A `Signal<T>` parameter.
pub struct SignalParam {
    /// The signal's name: the parameter's name.
    pub name: Ident,
    /// `T`.
    pub payload: Type,
}

/// A method of the block that is not a step: a possible compensation.
pub struct Helper {
    pub ident: Ident,
    pub takes_context: bool,
    pub inputs: Vec<Type>,
    pub is_async: bool,
    pub fallible: bool,
}

/// The whole workflow as written.
pub struct Model {
    pub self_ty: Type,
    pub type_name: String,
    pub steps: Vec<Step>,
    pub helpers: Vec<Helper>,
}

/// Name of the last segment of an attribute path, if it is one of ours.
pub fn step_kind(attr: &syn::Attribute) -> Option<StepKind> {
    let last = attr.path().segments.last()?;
    match last.ident.to_string().as_str() {
        "step" => Some(StepKind::Step),
        "saga_step" => Some(StepKind::SagaStep),
        _ => None,
    }
}

/// Removes our attributes from the block, so it can be emitted as plain Rust, and the steps
/// declared without a body (`workflow = Child` steps: the child runs in their place).
pub fn strip_step_attrs(item: &mut ItemImpl) {
    item.items.retain(|impl_item| match method_of(impl_item) {
        Some((method, false)) => !method.attrs.iter().any(|a| step_kind(a).is_some()),
        _ => true,
    });
    for impl_item in &mut item.items {
        if let ImplItem::Fn(f) = impl_item {
            f.attrs.retain(|a| step_kind(a).is_none());
        }
    }
}

/// A method of the block, and whether it has a body. A method declared without one
/// (`async fn summarize(&self, text: String) -> String;`) reaches the macro as verbatim tokens,
/// read here as a trait method's signature.
fn method_of(item: &ImplItem) -> Option<(ImplItemFn, bool)> {
    match item {
        ImplItem::Fn(method) => Some((method.clone(), true)),
        ImplItem::Verbatim(tokens) => {
            let declared = |input: syn::parse::ParseStream| {
                let attrs = input.call(syn::Attribute::parse_outer)?;
                let vis: syn::Visibility = input.parse()?;
                let sig: syn::Signature = input.parse()?;
                input.parse::<syn::Token![;]>()?;
                Ok(ImplItemFn {
                    attrs,
                    vis,
                    defaultness: None,
                    sig,
                    block: syn::parse_quote!({}),
                })
            };
            let method = syn::parse::Parser::parse2(declared, tokens.clone()).ok()?;
            Some((method, false))
        }
        _ => None,
    }
}

impl Model {
    /// Reads the block. Problems go to `errors`; the model holds what could be read.
    pub fn parse(item: &ItemImpl, errors: &mut Errors) -> Model {
        if let Some((_, path, _)) = &item.trait_ {
            errors.spanned(path, "#[workflow] goes on an inherent impl block (`impl MyWorkflow { .. }`), not on a trait impl");
        }
        if !item.generics.params.is_empty() {
            errors.spanned(
                &item.generics,
                "generic workflows are not supported: implement #[workflow] on a concrete type",
            );
        }
        let self_ty = (*item.self_ty).clone();
        let type_name = match &self_ty {
            Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        }
        .unwrap_or_else(|| "Workflow".to_owned());
        let mut model = Model {
            self_ty,
            type_name,
            steps: Vec::new(),
            helpers: Vec::new(),
        };
        for impl_item in &item.items {
            let Some((method, has_body)) = method_of(impl_item) else {
                continue;
            };
            let method = &method;
            let mut ours = method
                .attrs
                .iter()
                .filter_map(|a| step_kind(a).map(|k| (k, a)));
            match ours.next() {
                Some((kind, attr)) => {
                    if let Some((_, extra)) = ours.next() {
                        errors.spanned(
                            extra,
                            "a method carries one #[step] or #[saga_step] attribute",
                        );
                    }
                    let attr = StepAttr::parse(kind, attr, errors);
                    let mut step = model.read_step(method, attr, errors);
                    if !has_body {
                        step.body = None;
                    }
                    model.steps.push(step);
                }
                None => model.helpers.push(model.read_helper(method)),
            }
        }
        if model.steps.is_empty() {
            errors.spanned(
                &item.self_ty,
                "a #[workflow] impl block needs at least one #[step] method",
            );
        }
        model
    }

    /// Reads a step. A step with a bad signature is still returned (its error is recorded),
    /// so `after` lists naming it do not produce follow-on errors.
    fn read_step(&self, method: &ImplItemFn, attr: StepAttr, errors: &mut Errors) -> Step {
        let sig = &method.sig;
        let ident = sig.ident.clone();
        if sig.asyncness.is_none() {
            errors.spanned(
                sig.fn_token,
                format!("step `{ident}` must be an `async fn`"),
            );
        }
        if !sig.generics.params.is_empty() {
            errors.spanned(
                &sig.generics,
                format!("step `{ident}` cannot be generic: the graph needs concrete types"),
            );
        }
        match sig.inputs.first() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
            Some(FnArg::Receiver(r)) => {
                errors.spanned(r, format!("step `{ident}` must take `&self`: steps of one run execute concurrently, so they cannot take `self` or `&mut self`"));
            }
            _ => {
                errors.spanned(
                    &sig.ident,
                    format!("step `{ident}` must take `&self` as its first parameter"),
                );
            }
        }
        check_not_conditional(method, errors);
        check_context_first(sig, errors);
        let (takes_context, mut inputs) = self.read_inputs(sig);
        inputs.retain(|ty| !is_context_ref(ty));
        let signal = self.read_signal(sig, errors);
        if signal.is_some() {
            inputs.pop();
        }
        let (mut output, mut fallible) = self.read_output(&sig.output);
        // A child step returns the child's output as it is, a `Result` included.
        if let (Some(_), ReturnType::Type(_, ty)) = (&attr.workflow, &sig.output) {
            output = self.resolve_self(ty);
            fallible = false;
        }
        let error = match &sig.output {
            ReturnType::Type(_, ty) => error_conversion(ty),
            ReturnType::Default => ErrorConversion::Into,
        };
        let name = attr
            .name
            .as_ref()
            .map_or_else(|| ident.to_string(), |n| n.value.clone());
        let ret_span = match &sig.output {
            ReturnType::Type(_, ty) => syn::spanned::Spanned::span(&**ty),
            ReturnType::Default => sig.ident.span(),
        };
        Step {
            body: Some(syn::spanned::Spanned::span(&method.block)),
            signal,
            ret_span,
            ident,
            name,
            attr,
            takes_context,
            inputs,
            params_span: sig.paren_token.span.join(),
            output,
            fallible,
            error,
        }
    }

    fn read_helper(&self, method: &ImplItemFn) -> Helper {
        let (takes_context, inputs) = self.read_inputs(&method.sig);
        let (_, fallible) = self.read_output(&method.sig.output);
        Helper {
            ident: method.sig.ident.clone(),
            takes_context,
            inputs,
            is_async: method.sig.asyncness.is_some(),
            fallible,
        }
    }

    /// Splits the typed parameters into an optional leading `&StepContext` and the inputs.
    fn read_inputs(&self, sig: &syn::Signature) -> (bool, Vec<Type>) {
        let mut types: Vec<Type> = sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(t) => Some(self.resolve_self(&t.ty)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let takes_context = types.first().is_some_and(is_context_ref);
        if takes_context {
            types.remove(0);
        }
        (takes_context, types)
    }

    /// A `Signal<T>` parameter, which must come last, and only once.
    fn read_signal(&self, sig: &syn::Signature, errors: &mut Errors) -> Option<SignalParam> {
        let typed: Vec<&syn::PatType> = sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(t) => Some(t),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let mut found = None;
        for (i, param) in typed.iter().enumerate() {
            let Some(payload) = signal_payload(&param.ty) else {
                continue;
            };
            let Pat::Ident(name) = &*param.pat else {
                errors.spanned(&param.pat, "a `Signal<T>` parameter needs a plain name: the name of the signal it waits for");
                continue;
            };
            if i + 1 != typed.len() {
                errors.spanned(
                    &param.ty,
                    format!(
                        "the `Signal<T>` parameter of step `{}` must be its last parameter",
                        sig.ident
                    ),
                );
                continue;
            }
            found = Some(SignalParam {
                name: name.ident.clone(),
                payload: self.resolve_self(payload),
            });
        }
        found
    }

    fn read_output(&self, output: &ReturnType) -> (Type, bool) {
        match output {
            ReturnType::Default => (syn::parse_quote!(()), false),
            ReturnType::Type(_, ty) => match result_ok_type(ty) {
                Some(ok) => (self.resolve_self(ok), true),
                None => (self.resolve_self(ty), false),
            },
        }
    }

    /// Replaces `Self` by the workflow's type, so the type can be named outside the impl.
    fn resolve_self(&self, ty: &Type) -> Type {
        let mut ty = ty.clone();
        ReplaceSelf(&self.self_ty).visit_type_mut(&mut ty);
        ty
    }

    /// Finds a step by method name.
    pub fn step_index(&self, ident: &Ident) -> Option<usize> {
        self.steps.iter().position(|s| s.ident == *ident)
    }

    /// The identifier in step `step`'s `after` that names step `upstream` (for spans), or the
    /// step's own name when there is none.
    pub fn after_ident(&self, step: usize, upstream: usize) -> Ident {
        let step = &self.steps[step];
        step.attr
            .after
            .as_ref()
            .and_then(|a| {
                a.value
                    .names()
                    .iter()
                    .find(|n| self.step_index(n) == Some(upstream))
                    .cloned()
            })
            .unwrap_or_else(|| step.ident.clone())
    }

    /// Step method names, for "expected one of" lists.
    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.ident.to_string()).collect()
    }
}

/// A step under `#[cfg]`/`#[cfg_attr]` is refused (trybuild case `step_cfg`): the macro checks
/// the graph as a whole before `cfg` is evaluated, so it cannot know which edges remain.
fn check_not_conditional(method: &ImplItemFn, errors: &mut Errors) {
    let ident = &method.sig.ident;
    for attr in &method.attrs {
        if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
            errors.spanned(
                attr,
                format!(
                    "step `{ident}` cannot be conditionally compiled: the workflow's graph is checked \
                     as a whole, and the steps after `{ident}` would lose an input in some \
                     configurations; keep the step and test the configuration in its body \
                     (`if cfg!(feature = \"..\") {{ .. }}`), route around it with a `branch`, or put \
                     `#[cfg]` on the whole `impl` block"
                ),
            );
        }
    }
}

/// `&StepContext` anywhere but first (trybuild case `context_misplaced`) gets its own message,
/// and is left out of the step's inputs so that no other error follows from it.
fn check_context_first(sig: &syn::Signature, errors: &mut Errors) {
    let typed = sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(t) => Some(t),
        FnArg::Receiver(_) => None,
    });
    for param in typed.skip(1).filter(|t| is_context_ref(&t.ty)) {
        let ident = &sig.ident;
        errors.spanned(
            param,
            format!(
                "`&StepContext` must be the first parameter after `&self`: \
                 `async fn {ident}(&self, ctx: &StepContext, ..)`; the step's inputs follow it"
            ),
        );
    }
}

/// `&StepContext` (any path ending in `StepContext`).
fn is_context_ref(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "StepContext"))
}

/// `T` when `ty` is `...Signal<T>`.
fn signal_payload(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Signal" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) if args.args.len() == 1 => Some(t),
        _ => None,
    }
}

/// `T` when `ty` is `...Result<T, ..>`.
/// How the error of a `Result` return type converts: see [`ErrorConversion`].
fn error_conversion(ty: &Type) -> ErrorConversion {
    let Type::Path(p) = ty else {
        return ErrorConversion::Into;
    };
    let names_anyhow = |path: &syn::Path| path.segments.iter().any(|s| s.ident == "anyhow");
    let Some(last) = p.path.segments.last() else {
        return ErrorConversion::Into;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return ErrorConversion::Into;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    match types.as_slice() {
        [_] if names_anyhow(&p.path) => ErrorConversion::Anyhow,
        [_, Type::Path(e)] if names_anyhow(&e.path) => ErrorConversion::Anyhow,
        [_, Type::Path(e)] if is_boxed_error(e) => ErrorConversion::Boxed,
        _ => ErrorConversion::Into,
    }
}

/// `Box<dyn Error + ..>` (any path ending in `Error` inside the `dyn`).
fn is_boxed_error(ty: &syn::TypePath) -> bool {
    let Some(last) = ty.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    last.ident == "Box"
        && args.args.iter().any(|a| {
            matches!(a, syn::GenericArgument::Type(Type::TraitObject(t))
                if t.bounds.iter().any(|b| matches!(b, syn::TypeParamBound::Trait(tr)
                    if tr.path.segments.last().is_some_and(|s| s.ident == "Error"))))
        })
}

fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

struct ReplaceSelf<'a>(&'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty {
            if p.qself.is_none() && p.path.segments.first().is_some_and(|s| s.ident == "Self") {
                if p.path.segments.len() == 1 {
                    *ty = self.0.clone();
                    return;
                }
                let rest: Vec<_> = p.path.segments.iter().skip(1).collect();
                let self_ty = self.0;
                *ty = syn::parse_quote!(<#self_ty>::#(#rest)::*);
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// Identifiers a pattern binds, in order. Capitalised bare identifiers (`None`, `MAX`) are
/// constants or unit variants, not bindings.
pub fn pattern_bindings(pat: &Pat) -> Vec<Ident> {
    struct Collect(Vec<Ident>);
    impl<'ast> syn::visit::Visit<'ast> for Collect {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            let is_binding = p.subpat.is_some()
                || p.by_ref.is_some()
                || p.mutability.is_some()
                || !p.ident.to_string().starts_with(|c: char| c.is_uppercase());
            if is_binding {
                self.0.push(p.ident.clone());
            }
            syn::visit::visit_pat_ident(self, p);
        }
    }
    let mut collect = Collect(Vec::new());
    syn::visit::Visit::visit_pat(&mut collect, pat);
    collect.0
}
