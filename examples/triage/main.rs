//! A support-ticket triage agent.
//!
//! Run with `cargo run --example triage`. The workflow is in `workflow.rs`.
//!
//! Every incoming ticket is parsed and classified, then routed by its category:
//!
//! - **Bug**: three research steps run concurrently (server logs, the issue tracker, the
//!   component's owner), an all-join (`after = [..]`) waits for all three, and a diagnosis
//!   goes into the reply.
//! - **Question**: the FAQ and the docs search race; an any-join (`after = any(..)`) takes
//!   whichever answers first.
//! - Bugs and questions then share a bounded review loop: a draft reply is reviewed, revised
//!   and reviewed again (`max_passes = 3`) until the reviewer approves it.
//! - **Feature** requests go to the backlog; **Spam** (a unit variant) is closed.
//!
//! The branches of `classify` form one `match` over `Category`, so forgetting a category is a
//! compile error. The terminal steps (`send_reply`, `add_to_backlog`, `close_as_spam`) are on
//! mutually exclusive branches, so exactly one of them produces the workflow's output.
//!
//! Latency is simulated with `tokio::time::sleep`; the printed timings show that the research
//! steps overlap (the run takes about as long as the slowest of them, not their sum).

mod workflow;

use std::time::Instant;

use workflow::{agent, Triage, BUG, DARK_MODE, MALFORMED, PASSWORD, SHORTCUTS, SPAM};
use workflow_core::prelude::*;

// ---------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------

const TICKETS: &[&str] = &[BUG, PASSWORD, SHORTCUTS, DARK_MODE, SPAM, MALFORMED];

#[tokio::main]
async fn main() {
    let engine = Engine::in_memory();

    for raw in TICKETS {
        let subject = raw
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("(no subject)");
        println!("== {subject}");

        let started = Instant::now();
        let finished = engine
            .run_with(&agent(), raw.to_string(), RunOptions::default())
            .await;
        let took = started.elapsed();

        let path = &finished.history.path;
        if path.is_empty() {
            println!("   path:    (no step completed)");
        } else {
            println!("   path:    {}", path.join(" -> "));
        }
        println!(
            "   skipped: {}",
            finished
                .history
                .with_outcome(StepOutcome::Skipped)
                .join(", ")
        );
        match &finished.result {
            Ok(resolution) => println!("   output:  {resolution}"),
            Err(error) => println!("   error:   {error}"),
        }
        println!("   took:    {} ms", took.as_millis());
        println!();
    }

    println!("The graph, as Mermaid (paste into https://mermaid.live):\n");
    println!("{}", Triage::definition().to_mermaid());
}
