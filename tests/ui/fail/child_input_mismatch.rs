use workflow_core::prelude::*;

#[derive(Default)]
struct Summarize;

#[workflow]
impl Summarize {
    #[step]
    async fn shorten(&self, text: String) -> String {
        text
    }
}

struct Research;

#[workflow]
impl Research {
    #[step]
    async fn draft(&self, pages: u32) -> u32 {
        pages
    }
    #[step(after = draft, workflow = Summarize)]
    async fn summarize(&self, pages: u32) -> String;
}

fn main() {}
