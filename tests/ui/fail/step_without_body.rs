use workflow_core::prelude::*;

struct Research;

#[workflow]
impl Research {
    #[step]
    async fn draft(&self, topic: String) -> String;
}

fn main() {}
