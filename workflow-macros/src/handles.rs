//! Typed step handles for tests: `W::steps().charge` is a `StepHandle<W, (Order,), Receipt>`,
//! so `workflow-testkit` rejects a misspelled step or a mock of the wrong type at compile time.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::expand::Cx;

impl Cx<'_> {
    /// The input tuple of a step's handle and mock: its inputs, then its signal.
    pub(crate) fn handle_inputs(&self, i: usize) -> TokenStream {
        let step = self.step(i);
        let inputs = &step.inputs;
        let signal = step.signal.as_ref().map(|s| {
            let payload = &s.payload;
            quote!(__wf::Signal<#payload>,)
        });
        quote!((#(#inputs,)* #signal))
    }

    /// `W::signals()`: one typed name per signal (the first step waiting for it), so
    /// `handle.signal(W::signals().decision, payload)` checks the name and the payload type.
    pub(crate) fn signal_handles(&self) -> TokenStream {
        let self_ty = &self.model.self_ty;
        let mut fields = TokenStream::new();
        let mut values = TokenStream::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, step) in self.model.steps.iter().enumerate() {
            let Some(signal) = &step.signal else { continue };
            if !seen.insert(signal.name.to_string()) {
                continue;
            }
            let (ident, payload, index) = (&signal.name, &signal.payload, i as u16);
            let name = ident.to_string();
            fields.extend(quote!(pub #ident: __wf::SignalName<#self_ty, #payload>,));
            values.extend(quote!(#ident: __wf::SignalName::new(#index, #name),));
        }
        let signals = format_ident!("{}Signals", self.model.type_name);
        quote! {
            #[doc(hidden)]
            pub struct #signals { #fields }
            impl #self_ty {
                /// Typed names of this workflow's signals, for `RunHandle::signal`: a
                /// misspelled signal or a payload of the wrong type is a compile error.
                pub fn signals() -> #signals {
                    #signals { #values }
                }
            }
        }
    }

    /// `W::steps()`: one typed handle per step.
    pub(crate) fn step_handles(&self) -> TokenStream {
        let self_ty = &self.model.self_ty;
        let mut fields = TokenStream::new();
        let mut values = TokenStream::new();
        for (i, step) in self.model.steps.iter().enumerate() {
            let (ident, name, output, index) = (&step.ident, &step.name, &step.output, i as u16);
            let inputs = self.handle_inputs(i);
            fields.extend(quote!(pub #ident: __wf::StepHandle<#self_ty, #inputs, #output>,));
            values.extend(quote!(#ident: __wf::StepHandle::new(#index, #name),));
        }
        // Named after the workflow, as errors about a misspelled step show it.
        let steps = format_ident!("{}Steps", self.model.type_name);
        quote! {
            #[doc(hidden)]
            pub struct #steps { #fields }
            impl #self_ty {
                /// Typed handles on this workflow's steps, for tests (`workflow-testkit`): a
                /// misspelled step or a mock of the wrong type is a compile error.
                pub fn steps() -> #steps {
                    #steps { #values }
                }
            }
        }
    }
}
