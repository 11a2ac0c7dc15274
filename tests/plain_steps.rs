//! Plain steps (no items, signal, child workflow, compensation or declared timeout) on the
//! straight-line path, which awaits each in place: in a workflow of up to 64 of them as one
//! future type without a box, past 64 as each step's boxed future. Both give the same results
//! as the general path (a run with a test plan never takes the straight-line path).

use workflow_core::prelude::*;

#[path = "../workflow-core/benches/generated/chain_100.rs"]
mod chain_100;

/// Three plain steps, one of which takes the step context.
struct Small;

#[workflow]
impl Small {
    #[step]
    async fn double(&self, x: u64) -> u64 {
        x * 2
    }
    #[step(after = double)]
    async fn named(&self, ctx: &StepContext, x: u64) -> String {
        format!("{}:{x}:{}", ctx.step(), ctx.attempt())
    }
    #[step(after = named)]
    async fn shout(&self, s: String) -> Result<String, StepError> {
        if s.is_empty() {
            return Err(StepError::permanent(StepError::msg("empty")));
        }
        Ok(s.to_uppercase())
    }
}

#[tokio::test]
async fn a_small_workflow_runs_its_plain_steps_in_place() {
    let out = Engine::in_memory().run(&Small, 21).await.unwrap();
    assert_eq!(out, "NAMED:42:1");
}

#[tokio::test]
async fn a_workflow_of_more_than_64_plain_steps_runs_them_boxed() {
    let out = Engine::in_memory()
        .run(&chain_100::Chain100, 0)
        .await
        .unwrap();
    assert_eq!(out, 100);
}

#[tokio::test]
async fn the_general_path_gives_the_same_results() {
    // `run_with` records the run's history: it leaves the straight-line path.
    let engine = Engine::in_memory();
    let done = engine.run_with(&Small, 21, RunOptions::new()).await;
    assert_eq!(done.result.unwrap(), "NAMED:42:1");
    let done = engine
        .run_with(&chain_100::Chain100, 0, RunOptions::new())
        .await;
    assert_eq!(done.result.unwrap(), 100);
}
