//! Procedural macros of `workflow-core`: `#[workflow]`, `#[step]` and `#[saga_step]`.
//!
//! Use them through `workflow_core::prelude`; this crate holds no runtime logic. The pipeline
//! is parse (`model`, `attr`) -> check (`graph`, `valid`) -> generate (`expand`, `durable`,
//! `handles`); errors accumulate in `ctxt::Errors` and are all reported at once.

mod attr;
mod canonical;
mod child;
mod ctxt;
mod durable;
mod duration;
mod expand;
mod fallback;
mod graph;
mod handles;
mod model;
#[cfg(test)]
mod snapshot_tests;
mod suggest;
mod valid;

use proc_macro::TokenStream;
use quote::quote;

/// Turns an inherent `impl` block into a workflow graph; see `workflow_core` for the DSL.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    guard(|| workflow_impl(args.into(), item.into()))
}

/// Marks a step of a `#[workflow]` block. Outside one, it is an error.
#[proc_macro_attribute]
pub fn step(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced("step", item)
}

/// Marks a compensable step of a `#[workflow]` block. Outside one, it is an error.
#[proc_macro_attribute]
pub fn saga_step(_args: TokenStream, item: TokenStream) -> TokenStream {
    misplaced("saga_step", item)
}

fn misplaced(name: &str, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let message = format!("#[{name}] only works on a method inside a `#[workflow]` impl block; add `#[workflow]` to the enclosing `impl`");
    quote!(::core::compile_error!(#message); #item).into()
}

/// Runs the expansion, turning a panic (a bug of ours) into a compile error.
fn guard(
    expansion: impl FnOnce() -> proc_macro2::TokenStream + std::panic::UnwindSafe,
) -> TokenStream {
    match std::panic::catch_unwind(expansion) {
        Ok(tokens) => tokens.into(),
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let message = format!("internal error in #[workflow] (please report it): {detail}");
            quote!(::core::compile_error!(#message);).into()
        }
    }
}

/// The canonical definition text of `#[workflow(args)] item`, for the encoder's test.
#[cfg(test)]
fn canonical_text_of(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let block: syn::ItemImpl = syn::parse2(item).expect("an impl block");
    let mut errors = ctxt::Errors::default();
    let options = attr::WorkflowAttr::parse(args, &mut errors);
    let model = model::Model::parse(&block, &mut errors);
    let graph = graph::Graph::build(&model, &mut errors).expect("a graph");
    assert!(errors.is_empty(), "the test workflow has errors");
    let cx = expand::Cx {
        model: &model,
        graph: &graph,
        krate: syn::parse_quote!(::workflow_core),
    };
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| model.type_name.clone());
    cx.canonical_text(&name, options.version.unwrap_or(1))
}

fn workflow_impl(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut block: syn::ItemImpl = match syn::parse2(item) {
        Ok(block) => block,
        Err(e) => {
            let message =
                "#[workflow] goes on an `impl` block: `#[workflow] impl MyWorkflow { .. }`";
            return syn::Error::new(e.span(), message).to_compile_error();
        }
    };
    let mut errors = ctxt::Errors::default();
    let options = attr::WorkflowAttr::parse(args, &mut errors);
    let model = model::Model::parse(&block, &mut errors);
    model::strip_step_attrs(&mut block);
    let graph = if model.steps.is_empty() {
        None
    } else {
        graph::Graph::build(&model, &mut errors)
    };
    if let Some(graph) = &graph {
        valid::check(&model, graph, &mut errors);
    }
    match graph {
        Some(graph) if errors.is_empty() => expand::expand(&model, &graph, &options, &block),
        _ => {
            let krate = options
                .krate
                .clone()
                .unwrap_or_else(|| syn::parse_quote!(::workflow_core));
            fallback::with_errors(&block, errors.into_compile_errors(), &model, &krate)
        }
    }
}
