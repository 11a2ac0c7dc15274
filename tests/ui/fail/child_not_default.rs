use workflow_core::prelude::*;

struct Summarize {
    words: usize,
}

#[workflow]
impl Summarize {
    #[step]
    async fn shorten(&self, text: String) -> String {
        text.chars().take(self.words).collect()
    }
}

struct Research;

#[workflow]
impl Research {
    #[step(workflow = Summarize)]
    async fn summarize(&self, draft: String) -> String;
}

fn main() {}
