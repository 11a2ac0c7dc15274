//! A step returns `Result<u32, String>`: `String` is not a `std::error::Error`.
use workflow_core::prelude::*;

struct Parse;

#[workflow]
impl Parse {
    #[step]
    async fn parse(&self, text: String) -> Result<u32, String> {
        text.parse().map_err(|_| text)
    }
}

fn main() {}
