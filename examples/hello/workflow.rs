//! The `Hello` workflow: two steps in a chain. Shared by the `hello` example (`main.rs`) and
//! `tests/testkit_examples.rs`.

use workflow_core::prelude::*;

pub struct Hello;

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
