//! Snapshot tests of the code `#[workflow]` generates, pretty-printed.
//!
//! Regenerate after a deliberate change to the expansion with
//! `UPDATE_EXPECT=1 cargo test -p workflow-macros snapshot`, then review the diff of
//! `src/snapshots/*.rs.txt` like any other code change.

use expect_test::{expect_file, ExpectFile};
use quote::quote;

/// Expands `#[workflow(args)] item` and pretty-prints the result.
fn expand(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let tokens = crate::workflow_impl(args, item);
    let file: syn::File = syn::parse2(tokens.clone())
        .unwrap_or_else(|e| panic!("the expansion does not parse as a file: {e}\n{tokens}"));
    prettyplease::unparse(&file)
}

fn check(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream, expected: ExpectFile) {
    let text = expand(args, item);
    assert!(
        !text.contains("compile_error"),
        "the expansion reports errors:\n{text}"
    );
    expected.assert_eq(&text);
}

/// A diamond whose join is `any(..)`, followed by a two-armed branch on an `Option`.
#[test]
fn snapshot_diamond_any_branch() {
    check(
        quote!(),
        quote! {
            impl Diamond {
                #[step]
                async fn start(&self, n: u32) -> Result<u32, StepError> {
                    if n == 0 { Err(StepError::msg("zero")) } else { Ok(n) }
                }
                #[step(after = start)]
                async fn left(&self, n: u32) -> u32 { n + 1 }
                #[step(after = start)]
                async fn right(&self, n: u32) -> u32 { n * 2 }
                #[step(after = any(left, right))]
                async fn first(&self, n: u32) -> Option<u32> { (n % 2 == 0).then_some(n) }
                #[step(after = first, branch = Some(v))]
                async fn even(&self, v: u32) -> String { format!("even {v}") }
                #[step(after = first, branch = None)]
                async fn odd(&self) -> String { "odd".to_owned() }
            }
        },
        expect_file!["snapshots/diamond_any_branch.rs.txt"],
    );
}

/// A `for_each` with concurrency, retry, backoff and timeout, feeding a bounded loop whose
/// back edge is a retried branch.
#[test]
fn snapshot_for_each_loop() {
    check(
        quote!(name = "crawl", version = 2),
        quote! {
            impl Crawl {
                #[step]
                async fn seed(&self, url: String) -> Vec<String> { vec![url] }
                #[step(after = seed, for_each, concurrency = 4, retry = 3,
                       backoff = exponential("100ms", "10s"), timeout = "5s")]
                async fn fetch(&self, ctx: &StepContext, url: String) -> Result<usize, StepError> {
                    let _ = ctx.idempotency_key();
                    Ok(url.len())
                }
                #[step(after = fetch)]
                async fn total(&self, sizes: Vec<usize>) -> usize { sizes.iter().sum() }
                #[step(after = any(total, refine), max_passes = 5)]
                async fn check(&self, n: usize) -> (usize, bool) { (n, n > 100) }
                #[step(after = check, branch = (n, false), retry = 2, backoff = "50ms")]
                async fn refine(&self, n: usize) -> usize { n * 2 }
                #[step(after = check, branch = (n, true), timeout = "1s")]
                async fn finish(&self, n: usize) -> String { format!("{n} bytes") }
            }
        },
        expect_file!["snapshots/for_each_loop.rs.txt"],
    );
}

/// A chain of plain steps (one taking the step context, one fallible) beside a parallel
/// branch: `__run_segment` runs the chain as straight-line code.
#[test]
fn snapshot_plain_chain() {
    check(
        quote!(),
        quote! {
            impl Orders {
                #[step]
                async fn receive(&self, id: u64) -> u64 { id }
                #[step(after = receive)]
                async fn price(&self, ctx: &StepContext, id: u64) -> u32 {
                    ctx.attempt() + id as u32
                }
                #[step(after = price, retry = 2)]
                async fn charge(&self, cents: u32) -> Result<String, StepError> {
                    Ok(format!("charged {cents}"))
                }
                #[step(after = charge)]
                async fn receipt(&self, charge: String) -> String { charge }
                #[step(after = receive)]
                async fn audit(&self, id: u64) -> u64 { id }
                #[step(after = [receipt, audit])]
                async fn done(&self, receipt: String, audit: u64) -> String {
                    format!("{receipt} {audit}")
                }
            }
        },
        expect_file!["snapshots/plain_chain.rs.txt"],
    );
}
