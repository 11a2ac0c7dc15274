//! A research pipeline composed of a reusable child workflow: `Research` summarizes each
//! document with a `Summarize` child workflow step (`workflow = Summarize`); inside it a large and a small model race
//! (`after = first(..)`: the loser is dropped), and a fallback stands in when the large model
//! fails for good (`on_failure`). Then `run_many` summarizes many topics, 2 at once, with totals.
//!
//! ```text
//! cargo run --example research                  # in memory
//! cargo run --example research -- --durable     # on a SQLite file, each child a run of its own
//! ```
//!
//! The workflows are in `workflow.rs`.

mod workflow;

use futures::StreamExt;
use workflow::{documents, Research, Summarize, SummarizeStep};
use workflow_core::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let durable = std::env::args().any(|a| a == "--durable");
    if durable {
        let path = std::env::temp_dir().join("workflow-research.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        println!("store: {}", path.display());
        let engine = Engine::sqlite(&path).await?;
        println!("{}", engine.run(&Research, "workflows".to_owned()).await?);
        let children = engine
            .list(&workflow_core::store::RunFilter {
                workflow: Some("Summarize".into()),
                ..Default::default()
            })
            .await?;
        println!("child runs stored: {}", children.runs.len());
        return Ok(());
    }

    // The composed graph: `Summarize` is drawn inside the `summarize` step.
    println!("{}", Research::definition().to_mermaid());

    let engine = Engine::in_memory();
    // One document, followed step by step: which model won, and what the loser did.
    let doc = documents("workflows").remove(2);
    let run = engine.start(&Summarize, doc).await?;
    let mut events = run.events();
    while let Some(event) = events.next().await {
        match event {
            RunEvent::StepCompleted { step, .. } => println!("  completed {step}"),
            RunEvent::StepCancelled { step } => println!("  cancelled {step} (lost the race)"),
            RunEvent::FellBack { step, error, .. } => {
                println!("  {step} failed ({error}); its fallback stands in")
            }
            RunEvent::StepFailed {
                step: SummarizeStep::LargeModel,
                will_retry: true,
                ..
            } => println!("  large_model failed; retrying"),
            _ => {}
        }
    }
    println!("summary: {}", run.wait().await?);

    // The whole pipeline, for several topics, at most 2 at once.
    let topics = ["workflows", "sagas", "leases"].map(String::from);
    let mut bulk = engine.run_many(&Research, topics, 2);
    while let Some(item) = bulk.next().await {
        println!("--- topic {} ({:?})", item.index, item.duration);
        match item.result {
            Ok(report) => println!("{report}"),
            Err(error) => println!("error: {error}"),
        }
    }
    let totals = bulk.totals();
    println!(
        "{} succeeded, {} failed, p50 {:?}, p99 {:?}",
        totals.succeeded, totals.failed, totals.p50, totals.p99
    );
    Ok(())
}
