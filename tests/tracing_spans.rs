//! Under a `tracing` subscriber, each step attempt runs inside a `step` span naming it, on the
//! straight-line path too (a chain of plain steps in memory), so what a step logs says which
//! step it came from; under one that records no step span, a chain still runs as one segment.
//! Its own test binary: installing a subscriber anywhere in a process turns tracing on for all
//! of its runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use workflow_core::prelude::*;

/// A subscriber that knows, per thread, which spans are entered, and each span's `step` field.
#[derive(Default)]
struct StepSpans {
    next: AtomicU64,
    steps: Mutex<HashMap<u64, String>>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Reads a span's `step` field.
struct StepField(Option<String>);

impl Visit for StepField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "step" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for StepSpans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut step = StepField(None);
        span.record(&mut step);
        if let Some(step) = step.0 {
            self.steps.lock().unwrap().insert(id, step);
        }
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            let at = entered.iter().rposition(|&id| id == span.into_u64());
            entered.remove(at.expect("exits a span it entered"));
        });
    }
}

/// The `step` field of the innermost entered span that has one.
fn current_step(spans: &StepSpans) -> Option<String> {
    let steps = spans.steps.lock().unwrap();
    ENTERED.with(|entered| {
        let entered = entered.borrow();
        entered.iter().rev().find_map(|id| steps.get(id).cloned())
    })
}

/// A chain of plain steps, each noting the step its span names.
struct Noted {
    spans: std::sync::Arc<StepSpans>,
}

impl Noted {
    fn note(&self, mut seen: Vec<String>) -> Vec<String> {
        seen.push(current_step(&self.spans).unwrap_or_else(|| "no step span".into()));
        seen
    }
}

#[workflow]
impl Noted {
    #[step]
    async fn first(&self, seen: Vec<String>) -> Vec<String> {
        self.note(seen)
    }
    #[step(after = first)]
    async fn second(&self, seen: Vec<String>) -> Vec<String> {
        tokio::task::yield_now().await; // polled again: entered again
        self.note(seen)
    }
    #[step(after = second)]
    async fn third(&self, seen: Vec<String>) -> Vec<String> {
        self.note(seen)
    }
}

#[tokio::test]
async fn each_step_of_a_chain_runs_inside_its_own_span() {
    let spans = std::sync::Arc::new(StepSpans::default());
    let _subscriber = tracing::subscriber::set_default(spans.clone());
    let workflow = Noted {
        spans: spans.clone(),
    };
    let seen = Engine::in_memory()
        .run(&workflow, Vec::new())
        .await
        .unwrap();
    assert_eq!(seen, ["first", "second", "third"]);
    ENTERED.with(|entered| assert!(entered.borrow().is_empty(), "every span exited"));
}

/// A subscriber that records no `step` span, and counts how often it was asked about one.
#[derive(Default)]
struct StepSpansOff {
    asked: AtomicU64,
}

impl Subscriber for StepSpansOff {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes() // ask `enabled` for every span, so each ask is counted
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if metadata.name() == "step" {
            self.asked.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// A chain of four plain steps.
struct Tally;

#[workflow]
impl Tally {
    #[step]
    async fn one(&self, x: u32) -> u32 {
        x + 1
    }
    #[step(after = one)]
    async fn two(&self, x: u32) -> u32 {
        x * 10
    }
    #[step(after = two)]
    async fn three(&self, x: u32) -> u32 {
        tokio::task::yield_now().await;
        x + 3
    }
    #[step(after = three)]
    async fn four(&self, x: u32) -> u32 {
        x * 2
    }
}

#[tokio::test]
async fn a_chain_runs_as_one_segment_under_a_subscriber_that_records_no_step_spans() {
    let off = std::sync::Arc::new(StepSpansOff::default());
    let _subscriber = tracing::subscriber::set_default(off.clone());
    let out = Engine::in_memory().run(&Tally, 1).await.unwrap();
    assert_eq!(out, 46);
    // Step by step, each of the four steps would ask for its span; as one segment, only the
    // chain's first step does.
    assert_eq!(off.asked.load(Ordering::Relaxed), 1);
}
