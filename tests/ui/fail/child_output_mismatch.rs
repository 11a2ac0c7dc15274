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
    async fn draft(&self, topic: String) -> String {
        topic
    }
    #[step(after = draft, workflow = Summarize)]
    async fn summarize(&self, draft: String) -> Vec<String>;
}

fn main() {}
