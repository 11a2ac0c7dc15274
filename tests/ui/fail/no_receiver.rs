//! A step written as an associated function, without `&self`.
use workflow_core::prelude::*;

struct Free;

#[workflow]
impl Free {
    #[step]
    async fn start(n: u32) -> u32 {
        n
    }
}

fn main() {}
