//! Code generation: the static definition, the per-run state, the typed dispatcher, and the
//! spanned type assertions that make rustc report mismatches in the user's terms.
//!
//! Each step gets its own small async block (boxed), never one big `async fn` holding every
//! step's `.await`: compile time and memory stay linear in the number of steps. The one
//! exception is bounded: `__run_segment` runs each chain of plain steps as straight-line code in
//! one future, which the straight-line path awaits in place (no box, no dispatch per step); a
//! future holds at most 64 plain steps, more are cut into segments of 64.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, ItemImpl, Type};

use crate::attr::{BackoffSpec, WorkflowAttr};
use crate::graph::{Graph, Join};
use crate::model::{pattern_bindings, ErrorConversion, Model, Step};

/// The whole expansion: the user's block (without our attributes) and the generated items.
pub fn expand(
    model: &Model,
    graph: &Graph,
    options: &WorkflowAttr,
    block: &ItemImpl,
) -> TokenStream {
    let cx = Cx {
        model,
        graph,
        krate: options
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::workflow_core)),
    };
    let krate = &cx.krate;
    let self_ty = &model.self_ty;
    let input_ty = cx.input_ty();
    let output_ty = &cx.produced_ty(graph.outputs[0]);
    let state = cx.state_struct(output_ty);
    let out_enum = cx.out_enum();
    let definition = cx.definition(options);
    let (new_state, new_state_checks) = cx.new_state(&input_ty);
    let mut checks = new_state_checks;
    let mut distribute = TokenStream::new();
    for i in 0..model.steps.len() {
        let (function, step_checks) = cx.distribute(i, output_ty);
        distribute.extend(function);
        checks.extend(step_checks);
    }
    let StartArms {
        arms: start_arms,
        checks: start_checks,
        attempts,
        segment,
    } = cx.start_arms();
    let (run_segment, segments) = cx.run_segment(&segment);
    checks.extend(start_checks);
    let (compensate_arms, compensate_checks) = cx.compensate_arms();
    let (fallback_arms, fallback_checks) = cx.fallback_arms();
    checks.extend(fallback_checks);
    let item_failed_arms = (0..model.steps.len())
        .filter(|&i| model.steps[i].attr.item_results.is_some())
        .map(|i| {
            let (index, variant) = (i as u16, variant(i));
            quote! { #index => __wf::Some(__Out::#variant(__wf_item, __wf::Err(__wf_error))), }
        });
    checks.extend(compensate_checks);
    let deliver_arms = (0..model.steps.len()).map(|i| {
        let variant = variant(i);
        let distribute = distribute_fn(i);
        if model.steps[i].attr.for_each.is_some() {
            let slot = slot(i);
            // A saga `for_each` step keeps each item for its own compensation.
            let keep = model.steps[i].attr.compensation.as_ref().map(|_| {
                let step = &model.steps[i];
                let name = check_name(
                    format!("output_of_{}_is_kept_for_compensation", step.ident),
                    step.output.span(),
                );
                let field = saga_field(i);
                quote!(__wf_state.#field.push(#name::__clone(&__wf_value));)
            });
            quote! { __Out::#variant(__wf_item, __wf_value) => { #keep __wf_state.#slot.store(__wf_item, __wf_value); __wf::None } }
        } else {
            quote! { __Out::#variant(__wf_value) => #distribute(__wf_state, __wf_value), }
        }
    });
    let for_each_steps: Vec<usize> = (0..model.steps.len())
        .filter(|&i| model.steps[i].attr.for_each.is_some())
        .collect();
    let begin_arms = for_each_steps.iter().map(|&i| {
        let (index, slot) = (i as u16, slot(i));
        quote! { #index => __wf_state.#slot.begin(), }
    });
    let finish_arms = for_each_steps.iter().map(|&i| {
        let (index, slot, distribute) = (i as u16, slot(i), distribute_fn(i));
        quote! { #index => { let __wf_value = __wf_state.#slot.finish(); #distribute(__wf_state, __wf_value) } }
    });
    let mut in_loops: Vec<usize> = graph.loop_body.iter().flatten().copied().collect();
    in_loops.sort_unstable();
    in_loops.dedup();
    let reset_arms = in_loops.iter().map(|&i| {
        let (index, slot, empty) = (i as u16, slot(i), cx.empty_slot(i));
        quote! { #index => __wf_state.#slot = #empty, }
    });

    let timed_out_arms = model.steps.iter().enumerate().filter_map(|(i, step)| {
        let payload = &step.signal.as_ref()?.payload;
        let index = i as u16;
        Some(quote!(#index => __wf::Some(__wf::Box::new(__wf::Signal::<#payload>::TimedOut)),))
    });
    let durable = cx.durable_impl(output_ty);
    let handles = model.step_handles();
    let signal_names = model.signal_handles();
    let (step_enum, step_enum_def) = model.step_enum(&cx.krate);
    let signal_free = cx.signal_free();

    quote! {
        #block

        #step_enum_def

        #[allow(non_camel_case_types, non_snake_case, dead_code, unused_variables, unreachable_patterns, clippy::all)]
        const _: () = {
            use #krate::__private as __wf;

            #state
            #out_enum
            #checks
            #distribute

            impl #self_ty {
                #attempts
                #segments
            }

            impl __wf::Workflow for #self_ty {
                type Input = #input_ty;
                type Output = #output_ty;
                type Step = #step_enum;
                type __State = __State;
                type __Out = __Out;

                fn __step(__wf_step: __wf::StepIndex) -> __wf::Option<#step_enum> {
                    #step_enum::ALL.get(__wf_step as usize).copied()
                }

                fn definition() -> &'static __wf::Definition {
                    #definition
                }

                fn __new_state(__wf_input: Self::Input) -> __State {
                    #new_state
                }

                fn __start<'__wf_a>(
                    &'__wf_a self,
                    __wf_state: &mut __State,
                    __wf_step: __wf::StepIndex,
                    __wf_item: usize,
                    __wf_info: __wf::StartInfo<'_>,
                ) -> __wf::StepFuture<'__wf_a, __Out> {
                    match __wf_step {
                        #start_arms
                        _ => __wf::missing_input("<unknown>"),
                    }
                }

                #run_segment

                fn __item_failed(
                    __wf_step: __wf::StepIndex,
                    __wf_item: usize,
                    __wf_error: __wf::StepError,
                ) -> __wf::Option<__Out> {
                    match __wf_step {
                        #(#item_failed_arms)*
                        _ => __wf::None,
                    }
                }

                fn __fallback<'__wf_a>(
                    &'__wf_a self,
                    __wf_state: &mut __State,
                    __wf_step: __wf::StepIndex,
                    __wf_item: usize,
                    __wf_error: __wf::StepError,
                ) -> __wf::Option<__wf::StepFuture<'__wf_a, __Out>> {
                    match __wf_step {
                        #fallback_arms
                        _ => __wf::None,
                    }
                }

                fn __compensate<'__wf_a>(
                    &'__wf_a self,
                    __wf_state: &mut __State,
                    __wf_step: __wf::StepIndex,
                    __wf_completion: usize,
                    __wf_info: __wf::StartInfo<'_>,
                ) -> __wf::Option<__wf::StepFuture<'__wf_a, ()>> {
                    match __wf_step {
                        #compensate_arms
                        _ => __wf::None,
                    }
                }

                fn __deliver(__wf_state: &mut __State, __wf_out: __Out) -> __wf::Option<u16> {
                    match __wf_out {
                        #(#deliver_arms)*
                    }
                }

                fn __for_each_begin(__wf_state: &mut __State, __wf_step: __wf::StepIndex) -> usize {
                    match __wf_step {
                        #(#begin_arms)*
                        _ => 0,
                    }
                }

                fn __for_each_finish(__wf_state: &mut __State, __wf_step: __wf::StepIndex) -> __wf::Option<u16> {
                    match __wf_step {
                        #(#finish_arms)*
                        _ => __wf::None,
                    }
                }

                fn __reset(__wf_state: &mut __State, __wf_step: __wf::StepIndex) {
                    match __wf_step {
                        #(#reset_arms)*
                        _ => {}
                    }
                }

                fn __take_output(__wf_state: &mut __State) -> __wf::Option<Self::Output> {
                    __wf_state.__output.take()
                }

                fn __signal_timed_out(__wf_step: __wf::StepIndex) -> __wf::Option<__wf::Box<dyn __wf::Any + Send>> {
                    match __wf_step {
                        #(#timed_out_arms)*
                        _ => __wf::None,
                    }
                }
            }

            #durable
            #signal_free
            #handles
            #signal_names
        };
    }
}

pub(crate) struct Cx<'a> {
    pub model: &'a Model,
    pub graph: &'a Graph,
    pub krate: syn::Path,
}

/// `__start`'s arms, the checks they need, and each plain step's code in `__run_segment`.
struct StartArms {
    arms: TokenStream,
    checks: TokenStream,
    /// The methods of `Self` returning each plain step's attempt (after its inputs are taken).
    attempts: TokenStream,
    /// Per step: for a statically plain one, its inputs taken from the state and its call,
    /// an expression of `Result<__Out, StepError>`.
    segment: Vec<Option<TokenStream>>,
}

/// The plain steps of one segment future (see `Cx::run_segment`). One future over all of a
/// 1,000-step workflow's steps cost rustc 28% more memory (`scripts/compile-cost.sh`, fourth
/// cut of issue 12); segments of 16 or of 64 steps cost the same as each other.
const PLAIN_STEPS_IN_ONE_FUTURE: usize = 64;

/// The way from the root of a balanced tree of `Either`s over `n` leaves to leaf `k`: `true`
/// for each `Right`.
fn either_path(k: usize, n: usize) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let left = n.div_ceil(2);
    let (right, rest) = if k < left {
        (false, either_path(k, left))
    } else {
        (true, either_path(k - left, n - left))
    };
    std::iter::once(right).chain(rest).collect()
}

fn slot(i: usize) -> Ident {
    format_ident!("s{}", i)
}

pub(crate) fn variant(i: usize) -> Ident {
    format_ident!("S{}", i)
}

fn saga_field(i: usize) -> Ident {
    format_ident!("c{}", i)
}

fn distribute_fn(i: usize) -> Ident {
    format_ident!("__distribute_{}", i)
}

/// `tokens` with every token moved to `span`, so an error inside points at the user's code.
pub(crate) fn respan(tokens: impl ToTokens, span: Span) -> TokenStream {
    tokens
        .into_token_stream()
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(g) = &tree {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// A readable name for a generated check trait: rustc prints it in its `help:` lines.
pub(crate) fn check_name(text: String, span: Span) -> Ident {
    Ident::new(&text.replace("r#", ""), span)
}

/// A trait whose only impl is the identity, with our message when the types differ;
/// `<Expected as Trait<Found>>::__cast(value)` then checks a type at a chosen span.
pub(crate) fn cast_trait(name: &Ident, message: &str, label: &str) -> TokenStream {
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label)]
        trait #name<__T>: Sized { fn __cast(value: __T) -> Self; }
        impl<__T> #name<__T> for __T { fn __cast(value: __T) -> __T { value } }
    }
}

/// A trait implemented by every `Clone` type, with our message for the others.
fn clone_trait(name: &Ident, message: &str, label: &str) -> TokenStream {
    let span = name.span();
    respan(
        quote! {
            #[diagnostic::on_unimplemented(message = #message, label = #label)]
            trait #name: Sized { fn __clone(&self) -> Self; }
            impl<__T: __wf::Clone> #name for __T { fn __clone(&self) -> Self { __wf::Clone::clone(self) } }
        },
        span,
    )
}

impl Cx<'_> {
    pub(crate) fn step(&self, i: usize) -> &Step {
        &self.model.steps[i]
    }

    fn saga_steps(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.model.steps.len()).filter(|&i| self.step(i).attr.compensation.is_some())
    }

    /// The arms of `__compensate`, and the checks on each compensation's parameter type.
    fn compensate_arms(&self) -> (TokenStream, TokenStream) {
        let mut arms = TokenStream::new();
        let mut checks = TokenStream::new();
        for i in self.saga_steps().collect::<Vec<_>>() {
            let step = self.step(i);
            let Some(method) = step.attr.compensation.as_ref().map(|c| &c.value) else {
                continue;
            };
            let Some(helper) = self.model.helpers.iter().find(|h| h.ident == *method) else {
                continue;
            };
            let (index, field, output) = (i as u16, saga_field(i), &step.output);
            let param = &helper.inputs[0];
            let span = param.span();
            let name = check_name(format!("{method}_receives_output_of_{}", step.ident), span);
            checks.extend(cast_trait(&name, &format!(
                "compensation `{method}` of step `{}` receives `{{__T}}`, the output of `{}`, but its parameter is `{{Self}}`",
                step.ident, step.ident
            ), &format!("must be the output type of `{}`", step.ident)));
            let (param_r, output_r) = (respan(param, span), respan(output, span));
            let value = quote_spanned!(span=> <#param_r as #name<#output_r>>::__cast(__wf_value));
            let comp_name = method.to_string();
            let (context_let, context_arg) = if helper.takes_context {
                (
                    quote! { let __wf_context = __wf::StepContext::new(__wf::Arc::clone(__wf_info.run), #comp_name, __wf_info.attempt, __wf::None); },
                    quote!(&__wf_context,),
                )
            } else {
                (TokenStream::new(), TokenStream::new())
            };
            let call = quote!(self.#method(#context_arg #value).await);
            let result = if helper.fallible {
                quote!(__wf::IntoStepResult::into_step_result(#call))
            } else {
                quote!({ #call; __wf::Ok(()) })
            };
            arms.extend(quote! {
                #index => {
                    let __wf_value: #output = __wf::Clone::clone(__wf_state.#field.get(__wf_completion)?);
                    #context_let
                    __wf::Some(__wf::boxed(async move { #result }))
                }
            });
        }
        (arms, checks)
    }

    /// `on_failure = method`: the method's output, as the step's, once the step failed for
    /// good. A wrong return type is rustc's error at the method's name in the attribute.
    fn fallback_arms(&self) -> (TokenStream, TokenStream) {
        let mut arms = TokenStream::new();
        let mut checks = TokenStream::new();
        for (i, step) in self.model.steps.iter().enumerate() {
            let Some(method) = step.attr.on_failure.as_ref().map(|f| &f.value) else {
                continue;
            };
            let Some(helper) = self.model.helpers.iter().find(|h| h.ident == *method) else {
                continue;
            };
            let (index, variant, output) = (i as u16, variant(i), &step.output);
            let span = method.span();
            let slot = slot(i);
            // `async fn method(&self, <the step's inputs>, error: StepError)`: the inputs the
            // scheduler kept for it (see `keeps_input`).
            let (take, args) = if !self.fallback_takes_input(i) {
                (TokenStream::new(), Vec::new())
            } else if step.attr.for_each.is_some() {
                let take = quote! { let __wf::Some(__wf_arg0) = __wf_state.#slot.take(__wf_item) else { return __wf::None; }; };
                (take, vec![format_ident!("__wf_arg0")])
            } else {
                let args: Vec<Ident> = (0..step.inputs.len())
                    .map(|k| format_ident!("__wf_arg{}", k))
                    .collect();
                let takes = (0..step.inputs.len()).map(|k| {
                    let index = syn::Index::from(k);
                    quote!(__wf_state.#slot.#index.take())
                });
                let take = quote! { let (#(__wf::Some(#args),)*) = (#(#takes,)*) else { return __wf::None; }; };
                (take, args)
            };
            // Each input at the fallback's parameter type, checked there.
            let args: Vec<TokenStream> = args
                .iter()
                .zip(&helper.inputs)
                .zip(&step.inputs)
                .map(|((arg, param), input)| {
                    let span = param.span();
                    let name = check_name(format!("{method}_receives_input_of_{}", step.ident), span);
                    checks.extend(cast_trait(&name, &format!(
                        "fallback `{method}` of step `{}` receives the step's input `{{__T}}`, but its parameter is `{{Self}}`",
                        step.ident
                    ), &format!("must be the input type of `{}`", step.ident)));
                    let (param_r, input_r) = (respan(param, span), respan(input, span));
                    quote_spanned!(span=> <#param_r as #name<#input_r>>::__cast(#arg))
                })
                .collect();
            let call = quote_spanned!(span=> self.#method(#(#args,)* __wf_error).await);
            let value = if helper.fallible {
                quote_spanned!(span=> __wf::IntoStepResult::into_step_result(#call)?)
            } else {
                call
            };
            let wrap = if step.attr.for_each.is_some() {
                self.item_out(i, quote!(__wf_output))
            } else {
                quote!(__Out::#variant(__wf_output))
            };
            arms.extend(quote! {
                #index => {
                    #take
                    __wf::Some(__wf::boxed(async move {
                        let __wf_output: #output = #value;
                        __wf::Ok(#wrap)
                    }))
                }
            });
        }
        (arms, checks)
    }

    /// True when step `i`'s fallback takes the step's inputs before its `StepError`.
    fn fallback_takes_input(&self, i: usize) -> bool {
        let step = self.step(i);
        let Some(method) = step.attr.on_failure.as_ref().map(|f| &f.value) else {
            return false;
        };
        self.model
            .helpers
            .iter()
            .find(|h| h.ident == *method)
            .is_some_and(|h| h.inputs.len() > 1 && h.inputs.len() == step.inputs.len() + 1)
    }

    /// True when step `i` keeps its inputs in the state while its attempts run (each attempt
    /// gets a clone): for its retries, or for a fallback that takes them.
    fn keeps_input(&self, i: usize) -> bool {
        self.step(i).attr.retry.is_some() || self.fallback_takes_input(i)
    }

    fn first_start(&self) -> usize {
        self.graph
            .join
            .iter()
            .position(|j| *j == Join::Start)
            .unwrap_or(0)
    }

    pub(crate) fn input_ty(&self) -> Type {
        self.step(self.first_start()).inputs[0].clone()
    }

    /// What a step hands downstream: its output, or a `Vec` of them for `for_each`.
    fn produced_ty(&self, i: usize) -> TokenStream {
        let output = &self.step(i).output;
        if self.step(i).attr.for_each.is_some() {
            let item = self.item_ty(i);
            quote!(__wf::Vec<#item>)
        } else {
            quote!(#output)
        }
    }

    /// What one `for_each` item of step `i` hands on: its output, or with `item_results`
    /// its `Result` (a failed item does not fail the step).
    pub(crate) fn item_ty(&self, i: usize) -> TokenStream {
        let output = &self.step(i).output;
        if self.step(i).attr.item_results.is_some() {
            quote!(__wf::Result<#output, __wf::StepError>)
        } else {
            quote!(#output)
        }
    }

    /// Wraps an item's output `value` of step `i` as its `__Out`.
    fn item_out(&self, i: usize, value: TokenStream) -> TokenStream {
        let variant = variant(i);
        if self.step(i).attr.item_results.is_some() {
            quote!(__Out::#variant(__wf_item, __wf::Ok(#value)))
        } else {
            quote!(__Out::#variant(__wf_item, #value))
        }
    }

    fn slot_ty(&self, i: usize) -> TokenStream {
        let step = self.step(i);
        let inputs = &step.inputs;
        if step.attr.for_each.is_some() {
            let (item, output) = (&inputs[0], self.item_ty(i));
            quote!(__wf::ForEachSlot<#item, #output>)
        } else {
            quote!((#(__wf::Option<#inputs>,)*))
        }
    }

    fn empty_slot(&self, i: usize) -> TokenStream {
        if self.step(i).attr.for_each.is_some() {
            quote!(__wf::Default::default())
        } else {
            let nones = self.step(i).inputs.iter().map(|_| quote!(__wf::None));
            quote!((#(#nones,)*))
        }
    }

    fn state_struct(&self, output_ty: &TokenStream) -> TokenStream {
        let n = self.model.steps.len();
        let fields = (0..n).map(|i| {
            let (slot, ty) = (slot(i), self.slot_ty(i));
            quote!(#slot: #ty,)
        });
        let empties = (0..n).map(|i| {
            let (slot, empty) = (slot(i), self.empty_slot(i));
            quote!(#slot: #empty,)
        });
        let sagas: Vec<usize> = self.saga_steps().collect();
        let saga_fields = sagas.iter().map(|&i| {
            let (field, output) = (saga_field(i), &self.step(i).output);
            quote!(#field: __wf::Vec<#output>,)
        });
        let saga_empties = sagas.iter().map(|&i| {
            let field = saga_field(i);
            quote!(#field: __wf::Vec::new(),)
        });
        quote! {
            #[doc(hidden)]
            pub struct __State { #(#fields)* #(#saga_fields)* __output: __wf::Option<#output_ty>, }
            impl __wf::Default for __State {
                fn default() -> Self { __State { #(#empties)* #(#saga_empties)* __output: __wf::None, } }
            }
        }
    }

    fn out_enum(&self) -> TokenStream {
        let variants = self.model.steps.iter().enumerate().map(|(i, step)| {
            let (variant, output) = (variant(i), &step.output);
            if step.attr.for_each.is_some() {
                let item = self.item_ty(i);
                quote!(#variant(usize, #item),)
            } else {
                quote!(#variant(#output),)
            }
        });
        quote! {
            #[doc(hidden)]
            pub enum __Out { #(#variants)* }
        }
    }

    /// `__new_state`: the input goes to every start step (cloned for all but the last).
    fn new_state(&self, input_ty: &Type) -> (TokenStream, TokenStream) {
        let starts: Vec<usize> = (0..self.model.steps.len())
            .filter(|&i| self.graph.join[i] == Join::Start)
            .collect();
        let first = self.first_start();
        let mut checks = TokenStream::new();
        let clone_input = check_name(
            "workflow_input_goes_to_several_start_steps".to_owned(),
            self.model.steps[first].inputs[0].span(),
        );
        if starts.len() > 1 {
            let names = starts
                .iter()
                .map(|&i| format!("`{}`", self.step(i).ident))
                .collect::<Vec<_>>()
                .join(", ");
            checks.extend(clone_trait(&clone_input, &format!("the workflow input `{{Self}}` goes to several start steps ({names}), so it must implement `Clone`"), "the workflow input"));
        }
        let fills = starts.iter().enumerate().map(|(k, &i)| {
            let slot = slot(i);
            let param = &self.step(i).inputs[0];
            let span = param.span();
            let value = if k + 1 < starts.len() {
                quote_spanned!(span=> #clone_input::__clone(&__wf_input))
            } else {
                quote!(__wf_input)
            };
            if i == first {
                quote!(__wf_state.#slot.0 = __wf::Some(#value);)
            } else {
                let name = check_name(format!("start_step_{}_receives_workflow_input", self.step(i).ident), span);
                checks.extend(cast_trait(&name, &format!(
                    "every start step receives the workflow input `{{__T}}` (the input of `{}`), but `{}` takes `{{Self}}`",
                    self.step(first).ident, self.step(i).ident
                ), "this start step's input type differs from the workflow input"));
                let (param_r, input_r) = (respan(param, span), respan(input_ty, span));
                quote_spanned!(span=> __wf_state.#slot.0 = __wf::Some(<#param_r as #name<#input_r>>::__cast(#value));)
            }
        });
        let body = quote! {
            let mut __wf_state = <__State as __wf::Default>::default();
            #(#fills)*
            __wf_state
        };
        (body, checks)
    }

    /// `__distribute_i(state, value)`: hands step `i`'s output to its consumers; returns the arm
    /// of the branch that matched, if the step has branches.
    fn distribute(&self, i: usize, output_ty: &TokenStream) -> (TokenStream, TokenStream) {
        let step = self.step(i);
        let produced = self.produced_ty(i);
        let mut checks = TokenStream::new();
        let plain: Vec<_> = self.graph.downstream[i]
            .iter()
            .filter(|e| e.arm.is_none())
            .collect();
        let is_output = self.graph.outputs.contains(&i);
        let arms = &self.graph.arms[i];
        let uses = plain.len() + usize::from(is_output) + usize::from(!arms.is_empty());
        let out_span = step.output.span();
        let clone_name = check_name(
            format!("output_of_{}_goes_to_several_steps", step.ident),
            out_span,
        );
        if uses > 1 {
            let mut consumers: Vec<String> = plain
                .iter()
                .map(|e| format!("`{}`", self.step(e.to).ident))
                .collect();
            consumers.extend(arms.iter().map(|&a| format!("`{}`", self.step(a).ident)));
            if is_output {
                consumers.push("the workflow output".to_owned());
            }
            checks.extend(clone_trait(
                &clone_name,
                &format!(
                    "the output of step `{}` goes to {} consumers ({}), so `{{Self}}` must implement `Clone`",
                    step.ident,
                    uses,
                    consumers.join(", ")
                ),
                "this output is handed to several consumers",
            ));
        }
        let mut remaining = uses;
        let mut next_value = || {
            remaining -= 1;
            if remaining == 0 {
                quote!(__wf_value)
            } else {
                quote_spanned!(out_span=> #clone_name::__clone(&__wf_value))
            }
        };
        let mut body = TokenStream::new();
        if let Some(compensation) = &step.attr.compensation {
            let (name, field) = (
                check_name(
                    format!("output_of_{}_is_kept_for_compensation", step.ident),
                    out_span,
                ),
                saga_field(i),
            );
            checks.extend(clone_trait(&name, &format!(
                "saga step `{}` keeps a copy of its output for its compensation `{}`, so `{{Self}}` must implement `Clone`",
                step.ident, compensation.value
            ), "the output of a saga step is kept for its compensation"));
            // A `for_each` step keeps each item as it is delivered (see `deliver_arms`).
            if step.attr.for_each.is_none() {
                body.extend(
                    quote_spanned!(out_span=> __wf_state.#field.push(#name::__clone(&__wf_value));),
                );
            }
        }
        for edge in &plain {
            let value = next_value();
            let target = self.step(edge.to);
            let target_slot = slot(edge.to);
            if target.attr.for_each.is_some() {
                let param = &target.inputs[0];
                let span = param.span();
                let name = check_name(
                    format!("{}_maps_over_output_of_{}", target.ident, step.ident),
                    span,
                );
                let message = format!(
                    "step `{}` runs once per item of the output of `{}`, so `{{Self}}` must be a collection (`IntoIterator`) of `{{__I}}`",
                    target.ident, step.ident
                );
                checks.extend(respan(quote! {
                    #[diagnostic::on_unimplemented(message = #message, label = "the item type of this `for_each` step")]
                    trait #name<__I> { fn __items(self) -> impl ::core::iter::Iterator<Item = __I>; }
                    impl<__C: ::core::iter::IntoIterator<Item = __I>, __I> #name<__I> for __C {
                        fn __items(self) -> impl ::core::iter::Iterator<Item = __I> { self.into_iter() }
                    }
                }, span));
                let (param_r, produced_r) = (respan(param, span), respan(&produced, span));
                body.extend(quote_spanned!(span=> __wf_state.#target_slot.load(<#produced_r as #name<#param_r>>::__items(#value));));
                continue;
            }
            let position = if self.graph.join[edge.to] == Join::All {
                edge.position
            } else {
                0
            };
            let param = &target.inputs[position];
            let span = param.span();
            let index = syn::Index::from(position);
            let first_up = self.graph.upstream[edge.to][0];
            if self.graph.join[edge.to] == Join::Any && first_up != i {
                // Another upstream of the `any` join: it must return what the first one returns;
                // the parameter is checked once, against the first upstream.
                let at = self.model.after_ident(edge.to, i).span();
                let first = self.step(first_up);
                let name = check_name(
                    format!(
                        "{}_in_any_of_{}_returns_the_same_type",
                        step.ident, target.ident
                    ),
                    at,
                );
                let same = check_name(
                    format!("{}_receives_output_of_{}", target.ident, first.ident),
                    span,
                );
                checks.extend(cast_trait(&name, &format!(
                    "every step in `any(..)` of `{}` must return the same type: `{}` returns `{{Self}}`, but `{}` returns `{{__T}}`",
                    target.ident, first.ident, step.ident
                ), &format!("`{}` returns a different type than `{}`", step.ident, first.ident)));
                let (first_r, produced_r, param_r) = (
                    respan(self.produced_ty(first_up), at),
                    respan(&produced, at),
                    respan(param, span),
                );
                let first_span_r = respan(self.produced_ty(first_up), span);
                let unified = quote_spanned!(at=> <#first_r as #name<#produced_r>>::__cast(#value));
                let store = quote_spanned!(span=> __wf_state.#target_slot.#index = __wf::Some(<#param_r as #same<#first_span_r>>::__cast(#unified)););
                body.extend(first_arrival_only(&target_slot, edge.back, store));
                continue;
            }
            let name = check_name(
                format!("{}_receives_output_of_{}", target.ident, step.ident),
                span,
            );
            let (message, label) = match self.graph.join[edge.to] {
                Join::Any => (
                    format!(
                        "step `{}` expects `{{Self}}` from `any(..)`, whose steps return `{{__T}}`",
                        target.ident
                    ),
                    "this parameter receives the output of the first step in `any(..)` to finish"
                        .to_owned(),
                ),
                _ => (
                    format!(
                        "step `{}` expects `{{Self}}` from `{}`, which returns `{{__T}}`",
                        target.ident, step.ident
                    ),
                    format!("this parameter receives the output of `{}`", step.ident),
                ),
            };
            checks.extend(cast_trait(&name, &message, &label));
            let (param_r, produced_r) = (respan(param, span), respan(&produced, span));
            let store = quote_spanned!(span=> __wf_state.#target_slot.#index = __wf::Some(<#param_r as #name<#produced_r>>::__cast(#value)););
            if self.graph.join[edge.to] == Join::Any {
                body.extend(first_arrival_only(&target_slot, edge.back, store));
            } else {
                body.extend(store);
            }
        }
        if is_output {
            let value = next_value();
            if i == self.graph.outputs[0] {
                body.extend(quote!(__wf_state.__output = __wf::Some(#value);));
            } else {
                let name = check_name(format!("{}_returns_workflow_output", step.ident), out_span);
                checks.extend(cast_trait(&name, &format!(
                    "the workflow output is `{{Self}}` (returned by `{}`), but `{}`, which can also end the workflow, returns `{{__T}}`",
                    self.step(self.graph.outputs[0]).ident, step.ident
                ), "every step that can end the workflow must return the workflow output type"));
                let (output_r, produced_r) =
                    (respan(output_ty, out_span), respan(&produced, out_span));
                body.extend(quote_spanned!(out_span=> __wf_state.__output = __wf::Some(<#output_r as #name<#produced_r>>::__cast(#value));));
            }
        }
        let result = if arms.is_empty() {
            if uses == 0 {
                body.extend(quote!(let _ = __wf_value;));
            }
            quote!(__wf::None)
        } else {
            let value = next_value();
            let mut match_arms = TokenStream::new();
            for (arm, &child) in arms.iter().enumerate() {
                let child_step = self.step(child);
                let Some(branch) = &child_step.attr.branch else {
                    continue;
                };
                let pat = &branch.value;
                let child_slot = slot(child);
                let arm = arm as u16;
                let bindings = pattern_bindings(pat);
                let mut stores = TokenStream::new();
                for (k, (binding, param)) in bindings.iter().zip(&child_step.inputs).enumerate() {
                    let index = syn::Index::from(k);
                    let span = param.span();
                    let name = check_name(
                        format!("{}_receives_binding_{}", child_step.ident, binding),
                        span,
                    );
                    checks.extend(cast_trait(&name, &format!(
                        "step `{}` declares `{{Self}}`, but its branch pattern binds `{binding}` to a `{{__T}}`",
                        child_step.ident
                    ), &format!("receives `{binding}` from the `branch` pattern")));
                    let param_r = respan(param, span);
                    let binding = Ident::new(&binding.to_string(), binding.span());
                    stores.extend(quote_spanned!(span=> __wf_state.#child_slot.#index = __wf::Some(<#param_r as #name<_>>::__cast(#binding));));
                }
                match_arms
                    .extend(quote_spanned!(pat.span()=> #pat => { #stores __wf::Some(#arm) }));
            }
            let first_branch = self
                .step(arms[0])
                .attr
                .branch
                .as_ref()
                .map_or(Span::call_site(), |b| b.key);
            let scrutinee = respan(value, first_branch);
            quote_spanned!(first_branch=> match #scrutinee { #match_arms })
        };
        let function = distribute_fn(i);
        let function = quote! {
            fn #function(__wf_state: &mut __State, __wf_value: #produced) -> __wf::Option<u16> {
                #body
                #result
            }
        };
        (function, checks)
    }

    /// The match arms of `__start`: take (or clone, under `retry`) the inputs, call the method.
    fn start_arms(&self) -> StartArms {
        let mut arms = TokenStream::new();
        let mut checks = TokenStream::new();
        let mut attempts = TokenStream::new();
        let mut segment = vec![None; self.model.steps.len()];
        for (i, step) in self.model.steps.iter().enumerate() {
            let index = i as u16;
            let slot = slot(i);
            let name = &step.name;
            let method = &step.ident;
            let variant = variant(i);
            let keeps_input = self.keeps_input(i);
            let clone_name = check_name(
                format!("input_of_{}_is_cloned_for_each_attempt", step.ident),
                step.inputs.first().map_or(step.ident.span(), |t| t.span()),
            );
            if keeps_input {
                let why = if step.attr.retry.is_some() {
                    "has `retry`, so each attempt gets its own copy of its input"
                } else {
                    "keeps its input for its fallback, so each attempt gets a copy"
                };
                checks.extend(clone_trait(
                    &clone_name,
                    &format!(
                        "step `{}` {why}: `{{Self}}` must implement `Clone`",
                        step.ident
                    ),
                    "this input is cloned for each attempt",
                ));
            }
            let args: Vec<Ident> = (0..step.inputs.len())
                .map(|k| format_ident!("__wf_arg{}", k))
                .collect();
            let (take, item, takes) = if step.attr.for_each.is_some() {
                let span = step.inputs[0].span();
                let take = if keeps_input {
                    quote_spanned!(span=> __wf_state.#slot.get_cloned(__wf_item))
                } else {
                    quote!(__wf_state.#slot.take(__wf_item))
                };
                (
                    copied_take(keeps_input, take, quote!(__wf::Some(__wf_arg0)), name),
                    quote!(__wf::Some(__wf_item)),
                    Vec::new(),
                )
            } else {
                let takes: Vec<TokenStream> = step.inputs.iter().enumerate().map(|(k, param)| {
                    let index = syn::Index::from(k);
                    let span = param.span();
                    if keeps_input {
                        quote_spanned!(span=> __wf_state.#slot.#index.as_ref().map(#clone_name::__clone))
                    } else {
                        quote!(__wf_state.#slot.#index.take())
                    }
                }).collect();
                (
                    copied_take(
                        keeps_input,
                        quote!((#(#takes,)*)),
                        quote!((#(__wf::Some(#args),)*)),
                        name,
                    ),
                    quote!(__wf::None),
                    takes,
                )
            };
            let (signal_take, signal_arg) = match &step.signal {
                Some(signal) => {
                    let payload = &signal.payload;
                    (
                        quote! { let __wf::Some(__wf_signal) = __wf_info.signal.and_then(|__wf_box| __wf_box.downcast::<__wf::Signal<#payload>>().ok()) else { return __wf::missing_input(#name); }; },
                        quote!(, *__wf_signal),
                    )
                }
                None => (TokenStream::new(), TokenStream::new()),
            };
            let (context_let, context_arg) = if step.takes_context {
                (
                    quote! { let __wf_context = __wf::StepContext::new(__wf::Arc::clone(__wf_info.run), #name, __wf_info.attempt, #item); },
                    quote!(&__wf_context,),
                )
            } else {
                (TokenStream::new(), TokenStream::new())
            };
            let wrap = if step.attr.for_each.is_some() {
                let out = self.item_out(i, quote!(__wf_output));
                quote!(move |__wf_output| #out)
            } else {
                quote!(__Out::#variant)
            };
            // A function pointer: the steps of one signature share one `mocked` instance.
            let mock_wrap = if step.attr.for_each.is_some() {
                wrap.clone()
            } else {
                quote!(__Out::#variant as fn(_) -> __Out)
            };
            let mock_tys = self.model.handle_inputs(i);
            let mock_args: Vec<TokenStream> = args
                .iter()
                .map(|a| quote!(#a))
                .chain(step.signal.as_ref().map(|_| quote!(*__wf_signal)))
                .collect();
            let output = &step.output;
            let find_mock = quote! {
                let __wf_mock = __wf_info.mock::<#mock_tys, #output>(#index);
            };
            let mock = quote! {
                if let __wf::Some(__wf_mock) = __wf_mock {
                    return __wf::mocked(__wf_mock, (#(#mock_args,)*), #mock_wrap);
                }
            };
            if self.child_of(i).is_some() {
                let (body, child_checks) = self.child_start(i, &item, &wrap);
                checks.extend(child_checks);
                arms.extend(quote! {
                    #index => {
                        #find_mock
                        #take
                        #mock
                        #body
                    }
                });
                continue;
            }
            let call = quote!(self.#method(#context_arg #(#args),* #signal_arg).await);
            let result = if step.fallible && step.error != ErrorConversion::Into {
                let span = step.ret_span;
                let convert = match step.error {
                    ErrorConversion::Boxed => {
                        quote_spanned!(span=> __wf::StepError::from_boxed(__wf_error))
                    }
                    _ => quote_spanned!(span=> __wf::StepError::from_anyhow(__wf_error)),
                };
                quote!(match #call { __wf::Ok(__wf_output) => __wf::Ok((#wrap)(__wf_output)), __wf::Err(__wf_error) => __wf::Err(#convert) })
            } else if step.fallible {
                let span = step.ret_span;
                let name = check_name(
                    format!("error_of_{}_converts_into_step_error", step.ident),
                    span,
                );
                let message = format!(
                    "the error type `{{Self}}` of step `{}` must implement `std::error::Error + Send + Sync + 'static` (or be `StepError`)",
                    step.ident
                );
                checks.extend(respan(quote! {
                    #[diagnostic::on_unimplemented(message = #message, label = "this error type does not convert into `StepError`")]
                    trait #name { fn __into_step_error(self) -> __wf::StepError; }
                    impl<__E: ::core::convert::Into<__wf::StepError>> #name for __E {
                        fn __into_step_error(self) -> __wf::StepError { ::core::convert::Into::into(self) }
                    }
                }, span));
                let convert = quote_spanned!(span=> #name::__into_step_error(__wf_error));
                quote!(match #call { __wf::Ok(__wf_output) => __wf::Ok((#wrap)(__wf_output)), __wf::Err(__wf_error) => __wf::Err(#convert) })
            } else {
                quote!(__wf::Ok((#wrap)(#call)))
            };
            if self.statically_plain(i) {
                // One future type per plain step, `Send` checked once, at its method: the
                // general path boxes it, `__run_segment` awaits it in place.
                let attempt = format_ident!("__wf_attempt_{}", i);
                let tys = &step.inputs;
                let (context_param, context) = if step.takes_context {
                    (
                        quote!(__wf_context: __wf::StepContext,),
                        quote!(__wf_context,),
                    )
                } else {
                    (TokenStream::new(), TokenStream::new())
                };
                attempts.extend(quote! {
                    fn #attempt<'__wf_a>(
                        &'__wf_a self,
                        #context_param
                        #(#args: #tys),*
                    ) -> impl __wf::Future<Output = __wf::Result<__Out, __wf::StepError>> + __wf::Send + use<'__wf_a> {
                        async move { #result }
                    }
                });
                arms.extend(quote! {
                    #index => {
                        #find_mock
                        #take
                        #mock
                        #context_let
                        __wf::boxed(self.#attempt(#context #(#args),*))
                    }
                });
                // `__start`'s take, but a missing input is the segment's error, not a return.
                segment[i] = Some(quote! {
                    let (#(__wf::Some(#args),)*) = (#(#takes,)*) else {
                        return __wf::Err(__wf::missing_input_error(#name));
                    };
                    #context_let
                    self.#attempt(#context #(#args),*).await
                });
                continue;
            }
            arms.extend(quote! {
                #index => {
                    #find_mock
                    #signal_take
                    #take
                    #mock
                    #context_let
                    __wf::boxed(async move { #result })
                }
            });
        }
        StartArms {
            arms,
            checks,
            attempts,
            segment,
        }
    }

    /// A step the scheduler may run as plain (`StepFlow::plain`) whatever the run: no items,
    /// signal, child workflow, compensation or declared timeout.
    fn statically_plain(&self, i: usize) -> bool {
        let step = &self.model.steps[i];
        step.attr.for_each.is_none()
            && step.signal.is_none()
            && step.attr.compensation.is_none()
            && step.attr.timeout.is_none()
            && self.child_of(i).is_none()
    }

    /// The step after `i` along a chain edge, when both are statically plain: `i`'s only edge,
    /// into a step with no other upstream. The rule of `StepFlow::next` (a proc-macro crate
    /// cannot share the runtime's code); where they differed, the scheduler would only stop the
    /// segment there (see `__run_segment`).
    fn chain_next(&self, i: usize) -> Option<usize> {
        let [edge] = &self.graph.downstream[i][..] else {
            return None;
        };
        let to = edge.to;
        let sole = edge.arm.is_none()
            && !edge.back
            && self.graph.join[to] == Join::Single
            && self.graph.upstream[to].len() == 1
            && !self.races(to)
            && self.model.steps[to].attr.max_passes.is_none();
        (sole && self.statically_plain(i) && self.statically_plain(to)).then_some(to)
    }

    /// True for a step that runs after the first of its upstream steps (`after = first(..)`).
    fn races(&self, i: usize) -> bool {
        matches!(
            self.model.steps[i].attr.after.as_ref().map(|a| &a.value),
            Some(crate::attr::After::First(_))
        )
    }

    /// `__run_segment`: from a plain step, each step of its chain as straight-line code, in one
    /// future. Every chain of plain steps is a run of labelled blocks, entered at any of its steps
    /// by one `break` (the steps' code falls through in chain order); after each step but a
    /// chain's last, the scheduler's `__wf_advance` says whether the run goes on to the next in
    /// place (it keeps the steps' records), and the output is delivered to the state, where the
    /// next step takes its input as in `__start`. Past [`PLAIN_STEPS_IN_ONE_FUTURE`] plain steps,
    /// the chains are cut into segments of that many, each a method of `Self` (returned in the
    /// second token stream), and `__run_segment` picks one by the step (a tree of `Either`): a
    /// chain cut between two segments goes on in the next one, through the scheduler.
    fn run_segment(&self, codes: &[Option<TokenStream>]) -> (TokenStream, TokenStream) {
        let signature = |name: Ident, advance: TokenStream| {
            quote! {
                fn #name<'__wf_a, __WfAdvance>(
                    &'__wf_a self,
                    __wf_state: &'__wf_a mut __State,
                    __wf_step: __wf::StepIndex,
                    __wf_info: __wf::StartInfo<'__wf_a>,
                    #advance: &'__wf_a mut __WfAdvance,
                ) -> impl __wf::Future<Output = __wf::Result<__Out, __wf::StepError>> + __wf::Send + use<'__wf_a, __WfAdvance>
                where
                    __WfAdvance: ::core::ops::FnMut(__wf::StepIndex, __wf::StepIndex) -> bool + __wf::Send,
            }
        };
        let run_segment = format_ident!("__run_segment");
        let order = self.chain_order(codes);
        if order.is_empty() {
            let signature = signature(run_segment, quote!(_));
            let body = quote!(__wf::Workflow::__start(
                self, __wf_state, __wf_step, 0, __wf_info
            ));
            return (quote!(#signature { #body }), TokenStream::new());
        }
        let segments: Vec<&[usize]> = order.chunks(PLAIN_STEPS_IN_ONE_FUTURE).collect();
        if let [segment] = segments[..] {
            let (advance, body) = self.segment_body(segment, codes);
            let signature = signature(run_segment, advance);
            return (quote!(#signature { #body }), TokenStream::new());
        }
        let mut methods = TokenStream::new();
        let mut arms = TokenStream::new();
        let mut first = TokenStream::new();
        for (k, segment) in segments.iter().enumerate() {
            let (advance, body) = self.segment_body(segment, codes);
            let name = format_ident!("__wf_segment_{}", k);
            let signature = signature(name.clone(), advance);
            methods.extend(quote!(#signature { #body }));
            let mut pick = quote!(self.#name(__wf_state, __wf_step, __wf_info, __wf_advance));
            for right in either_path(k, segments.len()).into_iter().rev() {
                pick = if right {
                    quote!(__wf::Either::Right(#pick))
                } else {
                    quote!(__wf::Either::Left(#pick))
                };
            }
            let indices = segment.iter().map(|&i| i as u16);
            arms.extend(quote!(#(#indices)|* => #pick,));
            if k == 0 {
                first = pick;
            }
        }
        let signature = signature(run_segment, quote!(__wf_advance));
        let dispatch = quote! {
            #signature {
                match __wf_step {
                    #arms
                    // The first segment answers an unknown step with an error.
                    _ => #first,
                }
            }
        };
        (dispatch, methods)
    }

    /// The plain steps in chain order: each chain from its first step (no plain step chains
    /// into it) to its last. Every plain step is in it once (chain edges never close a cycle: a
    /// loop's back edge is not one, nor is an edge into its head).
    fn chain_order(&self, codes: &[Option<TokenStream>]) -> Vec<usize> {
        let mut entered = vec![false; codes.len()];
        for i in 0..codes.len() {
            if let Some(next) = self.chain_next(i) {
                entered[next] = true;
            }
        }
        let mut placed = vec![false; codes.len()];
        let mut order = Vec::new();
        let firsts = (0..codes.len()).filter(|&i| !entered[i]);
        for first in firsts.chain(0..codes.len()) {
            let mut step = Some(first).filter(|&i| codes[i].is_some());
            while let Some(i) = step.filter(|&i| !placed[i]) {
                placed[i] = true;
                order.push(i);
                step = self.chain_next(i);
            }
        }
        order
    }

    /// One segment's future (see [`Cx::run_segment`]): `segment` in chain order. Returns the
    /// name its `advance` parameter needs (`_` when no step of it goes on to another) and the
    /// body.
    fn segment_body(
        &self,
        segment: &[usize],
        codes: &[Option<TokenStream>],
    ) -> (TokenStream, TokenStream) {
        let label = |i: usize| syn::Lifetime::new(&format!("'__wf_s{i}"), Span::call_site());
        let entries = segment.iter().map(|&i| {
            let (index, label) = (i as u16, label(i));
            quote!(#index => break #label,)
        });
        let mut body = quote! {
            match __wf_step {
                #(#entries)*
                _ => return __wf::Err(__wf::missing_input_error("<not plain>")),
            }
        };
        let mut advances = false;
        for (position, &i) in segment.iter().enumerate() {
            let label = label(i);
            let code = &codes[i];
            // The chain goes on here when its next step is the segment's next.
            let next = self
                .chain_next(i)
                .filter(|&next| segment.get(position + 1) == Some(&next));
            let step = match next {
                Some(next) => {
                    advances = true;
                    let (from, to) = (i as u16, next as u16);
                    quote! {
                        let __wf_out = match { #code } {
                            __wf::Ok(__wf_out) => __wf_out,
                            __wf::Err(__wf_error) => return __wf::Err(__wf_error),
                        };
                        if !__wf_advance(#from, #to) {
                            return __wf::Ok(__wf_out);
                        }
                        <Self as __wf::Workflow>::__deliver(__wf_state, __wf_out);
                    }
                }
                None if position + 1 == segment.len() => quote!({ #code }),
                None => quote!(return { #code };),
            };
            body = quote! {
                #label: { #body }
                #step
            };
        }
        let advance = if advances {
            quote!(__wf_advance)
        } else {
            quote!(_)
        };
        (advance, quote!(async move { #body }))
    }

    fn definition(&self, options: &WorkflowAttr) -> TokenStream {
        let model = self.model;
        let graph = self.graph;
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| model.type_name.clone());
        let version = options.version.unwrap_or(1);
        let steps = model.steps.iter().enumerate().map(|(i, step)| {
            let step_name = &step.name;
            let join = match graph.join[i] {
                Join::Start => quote!(Start),
                Join::Single => quote!(Single),
                Join::All => quote!(All),
                Join::Any => quote!(Any),
            };
            let upstream = graph.upstream[i].iter().map(|&u| u as u16);
            let downstream = graph.downstream[i].iter().map(|e| {
                let to = e.to as u16;
                let arm = option(e.arm.map(|a| quote!(#a)));
                let back = e.back;
                quote!(__wf::Edge { to: #to, arm: #arm, back: #back })
            });
            let branch_text = step.attr.branch.as_ref().map(|b| pattern_text(&b.value));
            let branch = option(branch_text.as_ref().map(|t| quote!(#t)));
            let for_each = option(step.attr.for_each.map(|_| {
                let concurrency = option(step.attr.concurrency.as_ref().map(|c| {
                    let v = c.value;
                    quote!(#v)
                }));
                quote!(__wf::ForEach { concurrency: #concurrency })
            }));
            let loop_head = option(step.attr.max_passes.as_ref().map(|m| {
                let max = m.value;
                let body = graph.loop_body[i].iter().map(|&b| b as u16);
                quote!(__wf::LoopHead { max_passes: #max, body: &[#(#body),*] })
            }));
            let is_output = graph.outputs.contains(&i);
            let retries = step.attr.retry.as_ref().map_or(0, |r| r.value);
            let backoff = match step.attr.backoff.as_ref().map(|b| &b.value) {
                None => quote!(__wf::Backoff::None),
                Some(BackoffSpec::Fixed(d)) => {
                    let d = duration(*d);
                    quote!(__wf::Backoff::Fixed(#d))
                }
                Some(BackoffSpec::Exponential { base, max }) => {
                    let (base, max) = (duration(*base), duration(*max));
                    quote!(__wf::Backoff::Exponential { base: #base, max: #max })
                }
            };
            let timeout = option(step.attr.timeout.as_ref().map(|t| duration(t.value)));
            let signal = option(step.signal.as_ref().map(|signal| {
                let name = signal.name.to_string();
                let deadline = option(step.attr.deadline.as_ref().map(|d| duration(d.value)));
                quote!(__wf::SignalDef { name: #name, deadline: #deadline })
            }));
            let race = self.races(i);
            let fallback = option(step.attr.on_failure.as_ref().map(|f| {
                let name = f.value.to_string();
                quote!(#name)
            }));
            let compensation = option(step.attr.compensation.as_ref().map(|c| {
                let name = c.value.to_string();
                let retries = step.attr.compensation_retry.as_ref().map_or(DEFAULT_COMPENSATION_RETRIES, |r| r.value);
                let (base, max) = (duration(COMPENSATION_BACKOFF.0), duration(COMPENSATION_BACKOFF.1));
                quote!(__wf::Compensation { name: #name, policy: __wf::Policy { retries: #retries, backoff: __wf::Backoff::Exponential { base: #base, max: #max }, timeout: __wf::None } })
            }));
            let child = option(self.child_def(i));
            quote! {
                __wf::StepDef {
                    name: #step_name,
                    join: __wf::Join::#join,
                    upstream: &[#(#upstream),*],
                    downstream: &[#(#downstream),*],
                    branch: #branch,
                    for_each: #for_each,
                    loop_head: #loop_head,
                    is_output: #is_output,
                    policy: __wf::Policy { retries: #retries, backoff: #backoff, timeout: #timeout },
                    compensation: #compensation,
                    signal: #signal,
                    fallback: #fallback,
                    race: #race,
                    child: #child,
                }
            }
        }).collect::<Vec<_>>();
        let canonical = self.canonical_text(&name, version);
        let hash = fnv1a(canonical.as_bytes());
        quote! {
            static __WF_DEFINITION: __wf::Definition = __wf::Definition {
                name: #name,
                version: #version,
                hash: #hash,
                canonical: #canonical,
                steps: &[#(#steps),*],
                __flow: __wf::FlowTable::new(),
            };
            &__WF_DEFINITION
        }
    }
}

impl Cx<'_> {
    /// `SignalFree`: only a workflow without signal steps runs with `Engine::run` (nothing
    /// could signal it). For one with signal steps, the impl requires a trait named after the
    /// first of them that nothing implements, so the error at a `run` call names the step.
    fn signal_free(&self) -> TokenStream {
        let self_ty = &self.model.self_ty;
        let Some(step) = self.model.steps.iter().find(|s| s.signal.is_some()) else {
            let children = self.signal_free_children();
            return quote!(impl<__P> __wf::SignalFree<__P> for #self_ty where #(#children,)* {});
        };
        let signal = step
            .signal
            .as_ref()
            .map_or(String::new(), |s| s.name.to_string());
        let name = check_name(
            format!("step_{}_waits_for_a_signal", step.ident),
            step.ident.span(),
        );
        let message = format!(
            "step `{}` of `{{Self}}` waits for signal `{signal}`, which a run of `Engine::run` cannot receive (nothing holds a handle to send it)",
            step.ident
        );
        let note = format!(
            "start the run with `engine.start(&workflow, input)` and send it with `run.signal({}::signals().{signal}, payload)`, or run it on a durable engine",
            self.model.type_name
        );
        respan(
            quote! {
                #[diagnostic::on_unimplemented(message = #message, label = "this workflow waits for a signal", note = #note)]
                trait #name<__P> {}
                impl<__P> __wf::SignalFree<__P> for #self_ty where #self_ty: #name<__P> {}
            },
            step.ident.span(),
        )
    }
}

/// Retries of a compensation without `compensation_retry`: undoing matters more than failing fast.
const DEFAULT_COMPENSATION_RETRIES: u32 = 2;
/// Backoff between compensation attempts: base and cap.
const COMPENSATION_BACKOFF: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_millis(100),
    std::time::Duration::from_secs(2),
);

/// `__start`'s `let` of a step's inputs (`pattern`) from the state (`take`). A step that keeps
/// its inputs copies them for each attempt, through `copy_caught`: a panic in a user `Clone` is
/// the attempt's failure.
fn copied_take(
    keeps_input: bool,
    take: TokenStream,
    pattern: TokenStream,
    name: &str,
) -> TokenStream {
    let take = if keeps_input {
        quote! {
            (match __wf::copy_caught(|| #take) {
                __wf::Ok(__wf_copied) => __wf_copied,
                __wf::Err(__wf_failed) => return __wf_failed,
            })
        }
    } else {
        take
    };
    quote! { let #pattern = #take else { return __wf::missing_input(#name); }; }
}

/// An `any` join keeps the first arrival (a retried attempt clones it again); a loop's back
/// edge starts a new iteration, so it replaces the previous iteration's input.
fn first_arrival_only(slot: &Ident, back: bool, store: TokenStream) -> TokenStream {
    if back {
        store
    } else {
        quote!(if __wf_state.#slot.0.is_none() { #store })
    }
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(__wf::Some(#v)),
        None => quote!(__wf::None),
    }
}

fn duration(d: std::time::Duration) -> TokenStream {
    let nanos = d.as_nanos() as u64;
    quote!(__wf::Duration::from_nanos(#nanos))
}

/// The pattern as the user wrote it, with rustfmt-like spacing.
pub(crate) fn pattern_text(pat: &syn::Pat) -> String {
    let text = pat.to_token_stream().to_string();
    text.replace(" :: ", "::")
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
}

/// 64-bit FNV-1a: stable across compiler versions and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
