//! Typed step handles for tests: `W::steps().charge` is a `StepHandle<W, (Order,), Receipt>`,
//! so `workflow-testkit` rejects a misspelled step or a mock of the wrong type at compile time.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::Model;

impl Model {
    /// The input tuple of a step's handle and mock: its inputs, then its signal.
    pub(crate) fn handle_inputs(&self, i: usize) -> TokenStream {
        let step = &self.steps[i];
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
        let self_ty = &self.self_ty;
        let mut fields = TokenStream::new();
        let mut values = TokenStream::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let Some(signal) = &step.signal else { continue };
            if !seen.insert(signal.name.to_string()) {
                continue;
            }
            let (ident, payload, index) = (&signal.name, &signal.payload, i as u16);
            let name = ident.to_string();
            fields.extend(quote!(pub #ident: __wf::SignalName<#self_ty, #payload>,));
            values.extend(quote!(#ident: __wf::SignalName::new(#index, #name),));
        }
        let signals = format_ident!("{}Signals", self.type_name);
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

    /// `W::Step`: an enum of the workflow's steps, for run events, so renaming a step breaks
    /// an observer at compile time. Returns its name and its definition, which goes beside the
    /// workflow (outside the expansion's anonymous block) so users can name it.
    pub(crate) fn step_enum(&self, krate: &syn::Path) -> (syn::Ident, TokenStream) {
        let name = format_ident!("{}Step", self.type_name);
        let variants: Vec<syn::Ident> = self
            .steps
            .iter()
            .map(|s| format_ident!("{}", camel_case(&s.ident.to_string())))
            .collect();
        let names = self.steps.iter().map(|s| &s.name);
        let count = variants.len();
        let docs = self.steps.iter().map(|s| format!("Step `{}`.", s.name));
        let enum_doc = format!(
            "The steps of `{}`, as run events name them (`RunEvent::StepCompleted {{ step, .. }}`).",
            self.type_name
        );
        let definition = quote! {
            #[doc = #enum_doc]
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum #name {
                #(#[doc = #docs] #variants,)*
            }
            impl #name {
                /// Every step, in declaration order.
                pub const ALL: [#name; #count] = [#(#name::#variants),*];
                /// The step's stable name.
                pub fn name(&self) -> &'static str {
                    match self {
                        #(#name::#variants => #names,)*
                    }
                }
            }
            impl #krate::StepName for #name {
                fn step_name(&self) -> &'static str {
                    self.name()
                }
            }
            impl #krate::__private::fmt::Display for #name {
                fn fmt(&self, f: &mut #krate::__private::fmt::Formatter<'_>) -> #krate::__private::fmt::Result {
                    f.write_str(self.name())
                }
            }
        };
        (name, definition)
    }

    /// `W::steps()`: one typed handle per step.
    pub(crate) fn step_handles(&self) -> TokenStream {
        let self_ty = &self.self_ty;
        let mut fields = TokenStream::new();
        let mut values = TokenStream::new();
        for (i, step) in self.steps.iter().enumerate() {
            let (ident, name, output, index) = (&step.ident, &step.name, &step.output, i as u16);
            let inputs = self.handle_inputs(i);
            fields.extend(quote!(pub #ident: __wf::StepHandle<#self_ty, #inputs, #output>,));
            values.extend(quote!(#ident: __wf::StepHandle::new(#index, #name),));
        }
        // Named after the workflow, as errors about a misspelled step show it.
        let steps = format_ident!("{}Steps", self.type_name);
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

/// `manager_approval` -> `ManagerApproval`.
fn camel_case(ident: &str) -> String {
    let ident = ident.trim_start_matches("r#");
    ident
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
