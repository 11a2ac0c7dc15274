//! Parsing of `#[workflow(...)]`, `#[step(...)]` and `#[saga_step(...)]` arguments.
//!
//! Parsing never stops at the first problem: an unknown or duplicate key is recorded and the
//! parser skips to the next comma, so every mistake in an attribute is reported at once.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitInt, LitStr, Pat, Token};

use crate::ctxt::Errors;
use crate::duration;
use crate::suggest;

/// Which attribute declared a step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Step,
    SagaStep,
}

impl StepKind {
    pub fn attr_name(self) -> &'static str {
        match self {
            StepKind::Step => "step",
            StepKind::SagaStep => "saga_step",
        }
    }
}

/// `after = a`, `after = [a, b]` or `after = any(a, b)`.
pub enum After {
    Single(Ident),
    All(Vec<Ident>),
    Any(Vec<Ident>),
    /// `first(a, b)`: like `any`, and the losers are cancelled.
    First(Vec<Ident>),
}

impl After {
    pub fn names(&self) -> &[Ident] {
        match self {
            After::Single(one) => std::slice::from_ref(one),
            After::All(list) | After::Any(list) | After::First(list) => list,
        }
    }
}

/// A value with the span of the key that set it.
pub struct Keyed<T> {
    pub key: Span,
    pub value: T,
}

/// `name = ".."`: the value and the span of its literal.
pub struct StepName {
    pub value: String,
    pub value_span: Span,
}

/// Pause between retries, as written.
pub enum BackoffSpec {
    Fixed(std::time::Duration),
    Exponential {
        base: std::time::Duration,
        max: std::time::Duration,
    },
}

/// Everything a `#[step(...)]` or `#[saga_step(...)]` says.
pub struct StepAttr {
    pub kind: StepKind,
    /// The whole attribute, for errors about what it lacks.
    pub span: Span,
    pub after: Option<Keyed<After>>,
    pub branch: Option<Keyed<Pat>>,
    pub for_each: Option<Span>,
    pub concurrency: Option<Keyed<u32>>,
    pub max_passes: Option<Keyed<u32>>,
    pub output: Option<Span>,
    pub name: Option<StepName>,
    pub retry: Option<Keyed<u32>>,
    pub backoff: Option<Keyed<BackoffSpec>>,
    pub timeout: Option<Keyed<std::time::Duration>>,
    pub deadline: Option<Keyed<std::time::Duration>>,
    pub compensation: Option<Keyed<Ident>>,
    pub compensation_retry: Option<Keyed<u32>>,
    /// `on_failure = method`: the step's output when it fails for good.
    pub on_failure: Option<Keyed<Ident>>,
    /// `item_results` (with `for_each`): downstream receives each item's `Result`.
    pub item_results: Option<Span>,
    /// `workflow = Child`: the step runs a child workflow of this type.
    pub workflow: Option<Keyed<syn::Path>>,
}

const STEP_KEYS: &[&str] = &[
    "after",
    "branch",
    "for_each",
    "concurrency",
    "max_passes",
    "output",
    "name",
    "retry",
    "backoff",
    "timeout",
    "deadline",
    "on_failure",
    "item_results",
    "workflow",
];
const SAGA_KEYS: &[&str] = &["compensation", "compensation_retry"];

/// Largest accepted `retry`: more is a misunderstanding, not a policy.
const MAX_RETRY: u32 = 100;
/// Largest accepted `max_passes`.
const MAX_PASSES: u32 = 1_000_000;

impl StepAttr {
    fn empty(kind: StepKind, span: Span) -> Self {
        StepAttr {
            kind,
            span,
            after: None,
            branch: None,
            for_each: None,
            concurrency: None,
            max_passes: None,
            output: None,
            name: None,
            retry: None,
            backoff: None,
            timeout: None,
            deadline: None,
            compensation: None,
            compensation_retry: None,
            on_failure: None,
            item_results: None,
            workflow: None,
        }
    }

    /// Parses the attribute's arguments, recording problems in `errors`.
    pub fn parse(kind: StepKind, attr: &syn::Attribute, errors: &mut Errors) -> StepAttr {
        let mut parsed = StepAttr::empty(
            kind,
            attr.path()
                .segments
                .last()
                .map_or(Span::call_site(), |s| s.ident.span()),
        );
        let syn::Meta::List(list) = &attr.meta else {
            if let syn::Meta::NameValue(nv) = &attr.meta {
                errors.spanned(
                    nv,
                    format!(
                        "expected `#[{0}]` or `#[{0}(key = value, ...)]`",
                        kind.attr_name()
                    ),
                );
            }
            return parsed;
        };
        let parser = |input: ParseStream| {
            parse_pairs(input, errors, |key, input, errors| {
                parsed.parse_key(key, input, errors)
            })
        };
        if let Err(e) = parser.parse2(list.tokens.clone()) {
            errors.push(e);
        }
        parsed
    }

    fn valid_keys(&self) -> Vec<&'static str> {
        let mut keys = STEP_KEYS.to_vec();
        if self.kind == StepKind::SagaStep {
            keys.extend_from_slice(SAGA_KEYS);
        }
        keys
    }

    fn parse_key(
        &mut self,
        key: &Ident,
        input: ParseStream,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let name = key.to_string();
        let span = key.span();
        let duplicate = |errors: &mut Errors| {
            errors.at(
                span,
                format!("duplicate key `{name}`: each key may appear once"),
            );
        };
        macro_rules! set {
            ($field:ident, $value:expr) => {{
                let value = $value;
                if self.$field.is_some() {
                    duplicate(errors);
                } else {
                    self.$field = value;
                }
            }};
        }
        match name.as_str() {
            "after" => set!(
                after,
                Some(Keyed {
                    key: span,
                    value: parse_after(input, errors)?
                })
            ),
            "branch" => {
                input.parse::<Token![=]>()?;
                let pat = Pat::parse_multi_with_leading_vert(input)?;
                set!(
                    branch,
                    Some(Keyed {
                        key: span,
                        value: pat
                    })
                )
            }
            "for_each" => set!(for_each, Some(flag(key, input)?)),
            "output" => set!(output, Some(flag(key, input)?)),
            "item_results" => set!(item_results, Some(flag(key, input)?)),
            "concurrency" => set!(concurrency, bounded_int(key, input, errors, 1, u32::MAX)?),
            // The old name: reported, then read as `max_passes` so nothing else follows from it.
            "max_iterations" | "max_passes" => {
                if name == "max_iterations" {
                    errors.at(
                        span,
                        "`max_iterations` is now `max_passes`: the loop's head runs at most N \
                         times, its first pass included (the back edge fires at most N - 1 times)",
                    );
                }
                set!(max_passes, bounded_int(key, input, errors, 1, MAX_PASSES)?)
            }
            "retry" => set!(retry, bounded_int(key, input, errors, 1, MAX_RETRY)?),
            "name" => {
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                let value = lit.value();
                if value.is_empty()
                    || value
                        .chars()
                        .any(|c| !(c.is_alphanumeric() || c == '_' || c == '-'))
                {
                    errors.spanned(
                        &lit,
                        "a step name must be non-empty and made of letters, digits, `_` or `-`",
                    );
                }
                set!(
                    name,
                    Some(StepName {
                        value,
                        value_span: lit.span()
                    })
                )
            }
            "timeout" => set!(
                timeout,
                duration_value(input, errors)?.map(|d| Keyed {
                    key: span,
                    value: d
                })
            ),
            "deadline" => set!(
                deadline,
                duration_value(input, errors)?.map(|d| Keyed {
                    key: span,
                    value: d
                })
            ),
            "backoff" => set!(
                backoff,
                parse_backoff(input, errors)?.map(|b| Keyed {
                    key: span,
                    value: b
                })
            ),
            "on_failure" => {
                input.parse::<Token![=]>()?;
                let method: Ident = input.parse()?;
                set!(
                    on_failure,
                    Some(Keyed {
                        key: span,
                        value: method
                    })
                )
            }
            "workflow" => {
                input.parse::<Token![=]>()?;
                let path: syn::Path = input.parse()?;
                set!(
                    workflow,
                    Some(Keyed {
                        key: span,
                        value: path
                    })
                )
            }
            "compensation" if self.kind == StepKind::SagaStep => {
                input.parse::<Token![=]>()?;
                let method: Ident = input.parse()?;
                set!(
                    compensation,
                    Some(Keyed {
                        key: span,
                        value: method
                    })
                )
            }
            "compensation_retry" if self.kind == StepKind::SagaStep => {
                set!(
                    compensation_retry,
                    bounded_int(key, input, errors, 0, MAX_RETRY)?
                )
            }
            "compensation" | "compensation_retry" => {
                errors.at(
                    span,
                    format!(
                        "`{name}` needs `#[saga_step(...)]`: only a saga step can be compensated"
                    ),
                );
                skip_value(input)?;
            }
            _ => {
                let keys = self.valid_keys();
                errors.at(span, suggest::unknown("key", &name, "", &keys));
                skip_value(input)?;
            }
        }
        Ok(())
    }
}

/// Options of `#[workflow(...)]`.
#[derive(Default)]
pub struct WorkflowAttr {
    pub name: Option<String>,
    pub version: Option<u32>,
    pub krate: Option<syn::Path>,
}

impl WorkflowAttr {
    /// Parses the arguments of `#[workflow(...)]`, recording problems in `errors`.
    pub fn parse(tokens: proc_macro2::TokenStream, errors: &mut Errors) -> WorkflowAttr {
        let mut parsed = WorkflowAttr::default();
        let parser = |input: ParseStream| {
            parse_pairs(input, errors, |key, input, errors| {
                let name = key.to_string();
                let seen = match name.as_str() {
                    "name" => {
                        input.parse::<Token![=]>()?;
                        let lit: LitStr = input.parse()?;
                        parsed.name.replace(lit.value()).is_some()
                    }
                    "version" => {
                        let v = bounded_int(key, input, errors, 1, u32::MAX)?;
                        parsed.version.replace(v.map_or(1, |v| v.value)).is_some()
                    }
                    "crate" => {
                        input.parse::<Token![=]>()?;
                        let path = input.call(syn::Path::parse_mod_style)?;
                        parsed.krate.replace(path).is_some()
                    }
                    _ => {
                        errors.at(
                            key.span(),
                            suggest::unknown("key", &name, "", &["name", "version", "crate"]),
                        );
                        skip_value(input)?;
                        false
                    }
                };
                if seen {
                    errors.at(
                        key.span(),
                        format!("duplicate key `{name}`: each key may appear once"),
                    );
                }
                Ok(())
            })
        };
        if let Err(e) = parser.parse2(tokens) {
            errors.push(e);
        }
        parsed
    }
}

/// Parses `key [= value], ...`, handing each key to `on_key`.
fn parse_pairs(
    input: ParseStream,
    errors: &mut Errors,
    mut on_key: impl FnMut(&Ident, ParseStream, &mut Errors) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        let key = input.call(Ident::parse_any)?;
        on_key(&key, input, errors)?;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// Skips the rest of a `key = value` pair, up to the next top-level comma.
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

fn flag(key: &Ident, input: ParseStream) -> syn::Result<Span> {
    if input.peek(Token![=]) {
        return Err(syn::Error::new(
            input.span(),
            format!("`{key}` is a flag: write `{key}` alone, without a value"),
        ));
    }
    Ok(key.span())
}

fn bounded_int(
    key: &Ident,
    input: ParseStream,
    errors: &mut Errors,
    min: u32,
    max: u32,
) -> syn::Result<Option<Keyed<u32>>> {
    input.parse::<Token![=]>()?;
    let lit: LitInt = input.parse()?;
    match lit.base10_parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(Some(Keyed {
            key: key.span(),
            value: v,
        })),
        _ => {
            let hint = match key.to_string().as_str() {
                "retry" if lit.base10_digits() == "0" => {
                    " (`retry = 0` means no retry: remove the key)".to_owned()
                }
                _ => String::new(),
            };
            errors.spanned(
                &lit,
                format!("`{key}` must be between {min} and {max}{hint}"),
            );
            Ok(None)
        }
    }
}

fn duration_value(
    input: ParseStream,
    errors: &mut Errors,
) -> syn::Result<Option<std::time::Duration>> {
    input.parse::<Token![=]>()?;
    let lit: LitStr = input.parse()?;
    Ok(duration_lit(&lit, errors))
}

fn duration_lit(lit: &LitStr, errors: &mut Errors) -> Option<std::time::Duration> {
    match duration::parse(&lit.value()) {
        Ok(d) => Some(d),
        Err(message) => {
            errors.spanned(lit, message);
            None
        }
    }
}

fn parse_backoff(input: ParseStream, errors: &mut Errors) -> syn::Result<Option<BackoffSpec>> {
    input.parse::<Token![=]>()?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Ok(duration_lit(&lit, errors).map(BackoffSpec::Fixed));
    }
    let function: Ident = input.parse()?;
    if function != "exponential" {
        return Err(syn::Error::new(
            function.span(),
            "expected `backoff = \"1s\"` (fixed) or `backoff = exponential(\"100ms\", \"10s\")` (base, cap)",
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let base: LitStr = content.parse()?;
    content.parse::<Token![,]>()?;
    let max: LitStr = content.parse()?;
    let (Some(b), Some(m)) = (duration_lit(&base, errors), duration_lit(&max, errors)) else {
        return Ok(None);
    };
    if m < b {
        errors.spanned(
            &max,
            "the cap of an exponential backoff must not be below its base",
        );
        return Ok(None);
    }
    Ok(Some(BackoffSpec::Exponential { base: b, max: m }))
}

fn parse_after(input: ParseStream, errors: &mut Errors) -> syn::Result<After> {
    input.parse::<Token![=]>()?;
    let after = if input.peek(syn::token::Bracket) {
        let content;
        let brackets = syn::bracketed!(content in input);
        let list = content.parse_terminated(Ident::parse, Token![,])?;
        if list.is_empty() {
            errors.at(brackets.span.join(), "`after = []` lists no step: remove `after` to make a start step, or name the steps to wait for");
        }
        After::All(list.into_iter().collect())
    } else if input.peek(Ident) && input.peek2(syn::token::Paren) {
        let function: Ident = input.parse()?;
        let content;
        let parens = syn::parenthesized!(content in input);
        if function != "any" && function != "first" {
            return Err(syn::Error::new(
                function.span(),
                format!("unknown join `{function}(..)`: expected `any(a, b)`, `first(a, b)` (the losers are cancelled), or `[a, b]` to wait for all"),
            ));
        }
        let list = content.parse_terminated(Ident::parse, Token![,])?;
        if list.len() < 2 {
            errors.at(
                parens.span.join(),
                format!("`{function}(..)` needs at least two steps; for one, write `after = step`"),
            );
        }
        let list = list.into_iter().collect();
        if function == "first" {
            After::First(list)
        } else {
            After::Any(list)
        }
    } else {
        After::Single(input.parse()?)
    };
    Ok(after)
}

use syn::parse::Parse;
