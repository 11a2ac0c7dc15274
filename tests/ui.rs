//! Compile-time behaviour of `#[workflow]`: every DSL construct compiles (`tests/ui/pass`),
//! and every compile-time rule gives a readable, narrowly spanned error (`tests/ui/fail`).
//!
//! The `.stderr` files depend on the compiler version; the toolchain is pinned in
//! `rust-toolchain.toml`. Regenerate with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
