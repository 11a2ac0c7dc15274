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
    #[step(workflow = Summarize)]
    async fn summarize(&self, draft: String) -> String {
        draft
    }
}

fn main() {}
