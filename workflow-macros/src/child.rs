//! Code generation for `workflow = Child` steps: the child runs in the step's place. rustc
//! checks the step's declared input and output against the child's `Input` and `Output`, each
//! at the type as written in the step's signature.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::expand::{cast_trait, check_name, respan, Cx};

impl Cx<'_> {
    /// The child workflow type of step `i`, if it runs one.
    pub(crate) fn child_of(&self, i: usize) -> Option<&syn::Path> {
        self.step(i).attr.workflow.as_ref().map(|w| &w.value)
    }

    /// `__wf::ChildDef` for the definition of step `i`, if it runs a child.
    pub(crate) fn child_def(&self, i: usize) -> Option<TokenStream> {
        let child = self.child_of(i)?;
        Some(quote!(__wf::ChildDef { definition: <#child as __wf::Workflow>::definition }))
    }

    /// The body of step `i`'s `__start` arm once its input `__wf_arg0` is taken: the child
    /// run, its output wrapped by `wrap`; and the checks on the types.
    pub(crate) fn child_start(
        &self,
        i: usize,
        item: &TokenStream,
        wrap: &TokenStream,
    ) -> (TokenStream, TokenStream) {
        let step = self.step(i);
        let Some(child) = self.child_of(i) else {
            return (TokenStream::new(), TokenStream::new());
        };
        let ident = &step.ident;
        let child_name = child
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let mut checks = TokenStream::new();
        let (index, name) = (i as u16, &step.name);

        let param = &step.inputs[0];
        let input_check = check_name(
            format!("input_of_{ident}_is_the_input_of_{child_name}"),
            param.span(),
        );
        checks.extend(cast_trait(&input_check, &format!(
            "step `{ident}` hands its input `{{__T}}` to child workflow `{child_name}`, whose input is `{{Self}}`"
        ), &format!("must be the input type of `{child_name}`")));
        let (param_r, child_r) = (respan(param, param.span()), respan(child, param.span()));
        let input = quote_spanned!(param.span()=> <<#child_r as __wf::Workflow>::Input as #input_check<#param_r>>::__cast(__wf_arg0));

        let output = &step.output;
        let span = step.ret_span;
        let output_check = check_name(
            format!("output_of_{child_name}_is_the_output_of_{ident}"),
            span,
        );
        checks.extend(cast_trait(&output_check, &format!(
            "child workflow `{child_name}` returns `{{__T}}`, but step `{ident}` declares `{{Self}}`"
        ), &format!("must be the output type of `{child_name}`")));
        let (output_r, child_r) = (respan(output, span), respan(child, span));
        let output_value = quote_spanned!(span=> <#output_r as #output_check<<#child_r as __wf::Workflow>::Output>>::__cast(__wf_child.await?));

        let body = quote! {
            let __wf_child = __wf::child_step::<#child>(&__wf_info, #index, #name, #item, #input);
            __wf::boxed(async move {
                let __wf_output: #output = #output_value;
                __wf::Ok((#wrap)(__wf_output))
            })
        };
        (body, checks)
    }

    /// The `where` bounds of the `Durable<__P>` impl for the children (a child is durable when
    /// its parent is), and the arms of its `__child`.
    pub(crate) fn durable_children(&self) -> (Vec<TokenStream>, TokenStream) {
        let mut bounds = Vec::new();
        let mut arms = TokenStream::new();
        for i in 0..self.model.steps.len() {
            let Some(child) = self.child_of(i) else {
                continue;
            };
            bounds.push(quote!(#child: __wf::DurableChildWorkflow<__P>));
            bounds.push(quote!(<#child as __wf::Workflow>::Input: 'static));
            bounds.push(quote!(<#child as __wf::Workflow>::Output: 'static));
            let index = i as u16;
            arms.extend(quote!(#index => __wf::Some(__wf::durable_child::<#child, __P>()),));
        }
        if !bounds.is_empty() {
            bounds.push(quote!(__P: 'static));
        }
        (bounds, arms)
    }

    /// The `SignalFree<__P>` bounds for the children: a parent runs with `Engine::run` only
    /// when none of its children waits for a signal either.
    pub(crate) fn signal_free_children(&self) -> Vec<TokenStream> {
        (0..self.model.steps.len())
            .filter_map(|i| self.child_of(i))
            .map(|child| quote!(#child: __wf::SignalFree<__P>))
            .collect()
    }
}
