//! What the macro emits when the workflow has errors: the user's block without our
//! attributes (so the IDE keeps resolving its methods), every error, and stub impls of what
//! the code around the workflow uses (`Workflow`, `Durable`, `steps()`, `signals()`, the step
//! enum), so that one mistake in the block is one error, not one more at every use.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemImpl, Type};

use crate::model::Model;

/// The block as plain Rust, followed by the errors and the stubs.
pub fn with_errors(
    block: &ItemImpl,
    errors: TokenStream,
    model: &Model,
    krate: &syn::Path,
) -> TokenStream {
    // A trait impl or a generic block has its own error; stubs would only add to it.
    let stubs =
        (block.trait_.is_none() && block.generics.params.is_empty()).then(|| stubs(model, krate));
    quote! {
        #block
        #errors
        #stubs
    }
}

/// Impls whose bodies are never run (the program does not compile), with the types the block
/// declares where they could be read.
fn stubs(model: &Model, krate: &syn::Path) -> TokenStream {
    let self_ty = &model.self_ty;
    let unit: Type = syn::parse_quote!(());
    let start = model.steps.iter().find(|s| s.attr.after.is_none());
    let input = start
        .or(model.steps.first())
        .and_then(|s| s.inputs.first())
        .unwrap_or(&unit);
    let output = model
        .steps
        .iter()
        .find(|s| s.attr.output.is_some())
        .or(model.steps.last())
        .map_or(&unit, |s| &s.output);
    let (step_enum, step_enum_def) = model.step_enum(krate);
    let handles = model.step_handles();
    let signal_names = model.signal_handles();
    let name = &model.type_name;
    let never = quote!(::core::unreachable!("the workflow has compile errors"));
    quote! {
        #step_enum_def

        #[allow(unused, clippy::all)]
        const _: () = {
            use #krate::__private as __wf;

            impl __wf::Workflow for #self_ty {
                type Input = #input;
                type Output = #output;
                type Step = #step_enum;
                type __State = ();
                type __Out = ();

                fn definition() -> &'static __wf::Definition {
                    static __WF_DEFINITION: __wf::Definition = __wf::Definition {
                        name: #name,
                        version: 0,
                        hash: 0,
                        canonical: "",
                        steps: &[],
                        __flow: __wf::FlowTable::new(),
                    };
                    &__WF_DEFINITION
                }
                fn __step(_: __wf::StepIndex) -> __wf::Option<#step_enum> { #never }
                fn __new_state(_: Self::Input) {}
                fn __start<'a>(&'a self, _: &mut (), _: __wf::StepIndex, _: usize, _: __wf::StartInfo<'_>) -> __wf::StepFuture<'a, ()> { #never }
                fn __run_segment<'a, A: FnMut(__wf::StepIndex, __wf::StepIndex) -> bool + __wf::Send>(&'a self, _: &'a mut (), _: __wf::StepIndex, _: __wf::StartInfo<'a>, _: &'a mut A) -> impl __wf::Future<Output = __wf::Result<(), __wf::StepError>> + __wf::Send + use<'a, A> { async { #never } }
                fn __item_failed(_: __wf::StepIndex, _: usize, _: __wf::StepError) -> __wf::Option<()> { #never }
                fn __fallback<'a>(&'a self, _: &mut (), _: __wf::StepIndex, _: usize, _: __wf::StepError) -> __wf::Option<__wf::StepFuture<'a, ()>> { #never }
                fn __compensate<'a>(&'a self, _: &mut (), _: __wf::StepIndex, _: usize, _: __wf::StartInfo<'_>) -> __wf::Option<__wf::StepFuture<'a, ()>> { #never }
                fn __deliver(_: &mut (), _: ()) -> __wf::Option<u16> { #never }
                fn __for_each_begin(_: &mut (), _: __wf::StepIndex) -> usize { #never }
                fn __for_each_finish(_: &mut (), _: __wf::StepIndex) -> __wf::Option<u16> { #never }
                fn __reset(_: &mut (), _: __wf::StepIndex) { #never }
                fn __signal_timed_out(_: __wf::StepIndex) -> __wf::Option<__wf::Box<dyn __wf::Any + ::core::marker::Send>> { #never }
                fn __take_output(_: &mut ()) -> __wf::Option<Self::Output> { #never }
            }

            impl<__P> __wf::SignalFree<__P> for #self_ty {}

            impl<__P> __wf::Durable<__P> for #self_ty {
                fn __encode_input(_: &Self::Input) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> { #never }
                fn __decode_input(_: &[u8]) -> __wf::Result<Self::Input, __wf::CodecError> { #never }
                fn __encode_output(_: &Self::Output) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> { #never }
                fn __decode_output(_: &[u8]) -> __wf::Result<Self::Output, __wf::CodecError> { #never }
                fn __encode_out(_: &()) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> { #never }
                fn __decode_out(_: __wf::StepIndex, _: usize, _: &[u8]) -> __wf::Result<(), __wf::CodecError> { #never }
                fn __encode_signal(_: __wf::StepIndex, _: &(dyn __wf::Any + ::core::marker::Send + ::core::marker::Sync)) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> { #never }
                fn __decode_signal(_: __wf::StepIndex, _: &[u8]) -> __wf::Result<__wf::Box<dyn __wf::Any + ::core::marker::Send>, __wf::CodecError> { #never }
            }

            #handles
            #signal_names
        };
    }
}
