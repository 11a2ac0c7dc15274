//! The research pipeline's workflows: `Summarize` (one document: two model calls race, a
//! fallback stands in when the model fails) and `Research` (many documents, each summarized by
//! a `Summarize` child workflow, a node of `Research`'s graph, then a report).

use std::time::Duration;

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};

/// One document to summarize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
pub struct Document {
    pub title: String,
    pub text: String,
}

/// Summarizes one document: a large and a small model race (`first`: the loser is dropped, so
/// the run pays for one answer), and if the winner fails for good, the first sentence stands in
/// (`on_failure`).
#[derive(Clone, Default)]
pub struct Summarize;

#[workflow]
impl Summarize {
    #[step]
    async fn read(&self, doc: Document) -> Document {
        doc
    }

    /// The large model: slow, and it refuses very long texts.
    #[step(after = read, retry = 1, backoff = "10ms", on_failure = first_sentence)]
    async fn large_model(&self, doc: Document) -> Result<String, StepError> {
        tokio::time::sleep(Duration::from_millis(60)).await;
        if doc.text.len() > 120 {
            return Err(StepError::msg(format!(
                "`{}` is too long for the large model",
                doc.title
            )));
        }
        Ok(format!(
            "{}: {} (large model)",
            doc.title,
            shorten(&doc.text, 40)
        ))
    }

    /// The small model: fast on short texts, slow on long ones.
    #[step(after = read)]
    async fn small_model(&self, doc: Document) -> String {
        let ms = if doc.text.len() > 80 { 200 } else { 20 };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("{}: {} (small model)", doc.title, shorten(&doc.text, 25))
    }

    #[step(after = first(large_model, small_model))]
    async fn summary(&self, summary: String) -> String {
        summary
    }

    /// The large model's fallback: the step's output without the model.
    async fn first_sentence(&self, error: StepError) -> String {
        format!("(no summary: {error})")
    }
}

fn shorten(text: &str, chars: usize) -> String {
    let short: String = text.chars().take(chars).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}

/// Summarizes every document with a `Summarize` child workflow step, then writes the report.
#[derive(Clone, Default)]
pub struct Research;

#[workflow]
impl Research {
    #[step]
    async fn collect(&self, topic: String) -> Vec<Document> {
        documents(&topic)
    }

    /// Each item runs a `Summarize` child in the step's place (declared without a body: rustc
    /// checks `Document` and `String` against the child's input and output). On a durable engine
    /// each child is a run of its own under the id `~{parent}/summarize/{item}`, resumed, never
    /// started twice, after a crash; the run's diagram draws the child inside this step.
    #[step(after = collect, for_each, concurrency = 4, workflow = Summarize)]
    async fn summarize(&self, doc: Document) -> String;

    #[step(after = summarize)]
    async fn report(&self, summaries: Vec<String>) -> String {
        summaries.join("\n")
    }
}

/// The documents about `topic`.
pub fn documents(topic: &str) -> Vec<Document> {
    let doc = |title: &str, text: &str| Document {
        title: format!("{topic}/{title}"),
        text: text.to_owned(),
    };
    vec![
        doc("intro", "Durable workflows survive crashes."),
        doc(
            "sagas",
            "A saga undoes its completed steps in reverse order when a later step fails for good.",
        ),
        doc(
            "leases",
            "A worker holds each run under a lease with a fencing epoch; a worker that lost the lease writes nothing more, and another takes the run over after the lease expires.",
        ),
    ]
}
