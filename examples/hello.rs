//! The smallest workflow: two steps in a chain.
//!
//! Run with `cargo run --example hello`.

use workflow_core::prelude::*;

struct Hello;

#[workflow]
impl Hello {
    /// A start step: it receives the workflow input.
    #[step]
    async fn greet(&self, name: String) -> String {
        format!("hello, {name}")
    }

    /// Runs after `greet` and receives its output.
    #[step(after = greet)]
    async fn shout(&self, greeting: String) -> Result<String, StepError> {
        Ok(greeting.to_uppercase() + "!")
    }
}

#[tokio::main]
async fn main() -> Result<(), WorkflowError> {
    let output = Engine::in_memory().run(Hello, "world".to_string()).await?;
    println!("{output}");
    println!("{}", Hello::definition().to_mermaid());
    Ok(())
}
