//! What the macro emits when the workflow has errors: the user's block without our
//! attributes (so the IDE keeps resolving its methods) and every error.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemImpl;

/// The block as plain Rust, followed by the errors.
pub fn with_errors(block: &ItemImpl, errors: TokenStream) -> TokenStream {
    quote! {
        #block
        #errors
    }
}
