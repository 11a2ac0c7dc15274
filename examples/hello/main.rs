//! The smallest workflow: two steps in a chain (defined in `workflow.rs`).
//!
//! Run with `cargo run --example hello`.

mod workflow;

use workflow::Hello;
use workflow_core::prelude::*;

#[tokio::main]
async fn main() -> Result<(), WorkflowError> {
    let output = Engine::in_memory().run(&Hello, "world".to_string()).await?;
    println!("{output}");
    println!("{}", Hello::definition().to_mermaid());
    Ok(())
}
