//! Code generation for durable engines: the `Durable` impl that encodes and decodes the
//! input, the output, every step output and every signal payload.
//!
//! Each type gets a codec trait named after its role (`output_of_charge_is_serializable`)
//! with a blanket impl for serde types. The impl's `where` clauses use those traits with the
//! impl's own type parameter, so they are checked where a durable engine runs the workflow,
//! not here: the in-memory engine accepts non-serializable types, and a durable engine's
//! error names the step whose type is not serializable.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::expand::{check_name, respan, variant, Cx};

/// A codec trait for one role, with our message when the type is not serializable.
fn codec_trait(name: &syn::Ident, message: &str, label: &str) -> TokenStream {
    respan(
        quote! {
            #[diagnostic::on_unimplemented(message = #message, label = #label)]
            trait #name<__P>: Sized {
                fn __encode(&self) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError>;
                fn __decode(bytes: &[u8]) -> __wf::Result<Self, __wf::CodecError>;
            }
            impl<__T: __wf::Serialize + __wf::DeserializeOwned, __P> #name<__P> for __T {
                fn __encode(&self) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> { __wf::encode(self) }
                fn __decode(bytes: &[u8]) -> __wf::Result<Self, __wf::CodecError> { __wf::decode(bytes) }
            }
        },
        name.span(),
    )
}

impl Cx<'_> {
    /// `impl<__P> Durable<__P> for Workflow where ...`.
    pub(crate) fn durable_impl(&self, output_ty: &TokenStream) -> TokenStream {
        let model = self.model;
        let self_ty = &model.self_ty;
        let input_ty = self.input_ty();
        let mut traits = TokenStream::new();
        let mut bounds = Vec::new();
        let mut role = |name: syn::Ident, ty: TokenStream, message: String, label: &str| {
            traits.extend(codec_trait(&name, &message, label));
            bounds.push(quote!(#ty: #name<__P>));
            name
        };
        let input_codec = role(
            check_name("workflow_input_is_serializable".into(), input_ty.span()),
            quote!(#input_ty),
            "the workflow input `{Self}` must implement `Serialize` and `Deserialize` to run on a durable engine".into(),
            "the workflow input is journaled",
        );
        let output_codec = role(
            check_name("workflow_output_is_serializable".into(), Span::call_site()),
            output_ty.clone(),
            "the workflow output `{Self}` must implement `Serialize` and `Deserialize` to run on a durable engine".into(),
            "the workflow output is stored",
        );
        let mut encode_arms = TokenStream::new();
        let mut decode_arms = TokenStream::new();
        let mut signal_arms = TokenStream::new();
        let mut signal_encode_arms = TokenStream::new();
        for (i, step) in model.steps.iter().enumerate() {
            let output = &step.output;
            let codec = role(
                check_name(format!("output_of_{}_is_serializable", step.ident), output.span()),
                quote!(#output),
                format!("the output `{{Self}}` of step `{}` must implement `Serialize` and `Deserialize` to run on a durable engine", step.ident),
                "step outputs are journaled",
            );
            let (index, variant) = (i as u16, variant(i));
            if step.attr.item_results.is_some() {
                encode_arms.extend(quote!(__Out::#variant(_, __wf_value) => __wf::encode_item_result(__wf_value, <#output as #codec<__P>>::__encode),));
                decode_arms.extend(quote!(#index => __wf::Ok(__Out::#variant(__wf_item, __wf::decode_item_result(__wf_bytes, <#output as #codec<__P>>::__decode)?)),));
            } else if step.attr.for_each.is_some() {
                encode_arms.extend(quote!(__Out::#variant(_, __wf_value) => <#output as #codec<__P>>::__encode(__wf_value),));
                decode_arms.extend(quote!(#index => __wf::Ok(__Out::#variant(__wf_item, <#output as #codec<__P>>::__decode(__wf_bytes)?)),));
            } else {
                encode_arms.extend(quote!(__Out::#variant(__wf_value) => <#output as #codec<__P>>::__encode(__wf_value),));
                decode_arms.extend(quote!(#index => __wf::Ok(__Out::#variant(<#output as #codec<__P>>::__decode(__wf_bytes)?)),));
            }
            if let Some(signal) = &step.signal {
                let payload = &signal.payload;
                let codec = role(
                    check_name(format!("signal_{}_of_{}_is_serializable", signal.name, step.ident), payload.span()),
                    quote!(#payload),
                    format!("the payload `{{Self}}` of signal `{}` (step `{}`) must implement `Serialize` and `Deserialize` to run on a durable engine", signal.name, step.ident),
                    "signal payloads are journaled",
                );
                signal_arms.extend(quote_spanned! {payload.span()=>
                    #index => __wf::Ok(__wf::Box::new(__wf::Signal::<#payload>::Received(<#payload as #codec<__P>>::__decode(__wf_bytes)?))),
                });
                signal_encode_arms.extend(quote_spanned! {payload.span()=>
                    #index => match __wf_payload.downcast_ref::<#payload>() {
                        __wf::Some(__wf_value) => <#payload as #codec<__P>>::__encode(__wf_value),
                        __wf::None => __wf::Err(__wf::CodecError(__wf::unknown_step(__wf_step))),
                    },
                });
            }
        }
        let (child_bounds, child_arms) = self.durable_children();
        let schemas = model.steps.iter().filter_map(|step| {
            let signal = step.signal.as_ref()?;
            let (name, payload) = (signal.name.to_string(), &signal.payload);
            Some(quote! { (#name, (&__wf::SchemaProbe::<#payload>::new()).schema()) })
        });
        bounds.extend(child_bounds);
        quote! {
            #traits

            impl<__P> __wf::Durable<__P> for #self_ty where #(#bounds,)* {
                fn __signal_schemas() -> __wf::Vec<(&'static str, __wf::Option<__wf::String>)> {
                    #[allow(unused_imports)]
                    use __wf::{HasSchema as _, NoSchema as _};
                    __wf::Vec::from([#(#schemas),*])
                }
                fn __child(__wf_step: __wf::StepIndex) -> __wf::Option<__wf::DurableChild> {
                    match __wf_step {
                        #child_arms
                        _ => __wf::None,
                    }
                }
                fn __encode_input(__wf_input: &Self::Input) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> {
                    <#input_ty as #input_codec<__P>>::__encode(__wf_input)
                }
                fn __decode_input(__wf_bytes: &[u8]) -> __wf::Result<Self::Input, __wf::CodecError> {
                    <#input_ty as #input_codec<__P>>::__decode(__wf_bytes)
                }
                fn __encode_output(__wf_output: &Self::Output) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> {
                    <#output_ty as #output_codec<__P>>::__encode(__wf_output)
                }
                fn __decode_output(__wf_bytes: &[u8]) -> __wf::Result<Self::Output, __wf::CodecError> {
                    <#output_ty as #output_codec<__P>>::__decode(__wf_bytes)
                }
                fn __encode_out(__wf_out: &__Out) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> {
                    match __wf_out { #encode_arms }
                }
                fn __decode_out(__wf_step: __wf::StepIndex, __wf_item: usize, __wf_bytes: &[u8]) -> __wf::Result<__Out, __wf::CodecError> {
                    match __wf_step {
                        #decode_arms
                        _ => __wf::Err(__wf::CodecError(__wf::unknown_step(__wf_step))),
                    }
                }
                fn __encode_signal(__wf_step: __wf::StepIndex, __wf_payload: &(dyn __wf::Any + ::core::marker::Send + ::core::marker::Sync)) -> __wf::Result<__wf::Vec<u8>, __wf::CodecError> {
                    match __wf_step {
                        #signal_encode_arms
                        _ => __wf::Err(__wf::CodecError(__wf::unknown_step(__wf_step))),
                    }
                }
                fn __decode_signal(__wf_step: __wf::StepIndex, __wf_bytes: &[u8]) -> __wf::Result<__wf::Box<dyn __wf::Any + Send>, __wf::CodecError> {
                    match __wf_step {
                        #signal_arms
                        _ => __wf::Err(__wf::CodecError(__wf::unknown_step(__wf_step))),
                    }
                }
            }
        }
    }
}
