//! Fallbacks: `on_failure = method` gives a step's output when the step failed for good (after
//! its retries); the run goes on as if the step had succeeded, and the history and events say
//! both what failed and that the fallback stood in.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use temp_db::TempDb;

use futures::StreamExt;
use workflow_core::prelude::*;

/// A race of two model calls would be `first`; here the costly model fails and a cheap
/// summary stands in.
#[derive(Clone, Default)]
struct Summarize {
    calls: Arc<AtomicUsize>,
    fallbacks: Arc<AtomicUsize>,
}

#[workflow]
impl Summarize {
    #[step]
    async fn fetch(&self, doc: String) -> String {
        doc
    }

    #[step(after = fetch, retry = 2, backoff = "1ms", on_failure = first_line)]
    async fn model(&self, text: String) -> Result<String, StepError> {
        self.calls.fetch_add(1, SeqCst);
        if text.contains("long") {
            return Err(StepError::msg(format!(
                "model overloaded ({} chars)",
                text.len()
            )));
        }
        Ok(format!("summary of {text}"))
    }

    #[step(after = model)]
    async fn publish(&self, summary: String) -> String {
        format!("published: {summary}")
    }

    async fn first_line(&self, error: StepError) -> String {
        self.fallbacks.fetch_add(1, SeqCst);
        format!("fallback after: {error}")
    }
}

#[tokio::test]
async fn a_fallbacks_output_flows_downstream_after_the_retries() {
    let wf = Summarize::default();
    let done = Engine::in_memory()
        .run_with(&wf, "a long text".to_owned(), RunOptions::new())
        .await;
    assert_eq!(
        done.result.unwrap(),
        "published: fallback after: model overloaded (11 chars)"
    );
    assert_eq!(wf.calls.load(SeqCst), 3, "the retries ran first");
    assert_eq!(wf.fallbacks.load(SeqCst), 1);
    let model = done.history.step("model").unwrap();
    assert_eq!(model.outcome, StepOutcome::Completed);
    assert_eq!(model.attempts, 3);
    let fell_back = model
        .fell_back
        .as_ref()
        .expect("the history records the failure");
    assert!(fell_back.to_string().contains("overloaded"), "{fell_back}");
    assert_eq!(done.history.path, ["fetch", "model", "publish"]);

    // A step that succeeds never calls its fallback.
    let ok = Engine::in_memory()
        .run(&wf, "short".to_owned())
        .await
        .unwrap();
    assert_eq!(ok, "published: summary of short");
    assert_eq!(wf.fallbacks.load(SeqCst), 1);
}

#[tokio::test]
async fn events_say_what_failed_and_that_the_fallback_stood_in() {
    let engine = Engine::in_memory();
    let run = engine
        .start(&Summarize::default(), "long".to_owned())
        .await
        .unwrap();
    let events: Vec<RunEvent<SummarizeStep>> = run.events().collect().await;
    let model: Vec<&RunEvent<SummarizeStep>> = events
        .iter()
        .filter(|e| e.step() == Some(&SummarizeStep::Model))
        .collect();
    assert!(
        matches!(
            model.as_slice(),
            [
                RunEvent::StepStarted { attempt: 1, .. },
                RunEvent::StepFailed {
                    will_retry: true,
                    ..
                },
                RunEvent::StepStarted { attempt: 2, .. },
                RunEvent::StepFailed {
                    will_retry: true,
                    ..
                },
                RunEvent::StepStarted { attempt: 3, .. },
                RunEvent::StepFailed {
                    will_retry: false,
                    ..
                },
                RunEvent::FellBack { .. },
                RunEvent::StepCompleted { .. },
            ]
        ),
        "{model:?}"
    );
    assert!(run.wait().await.is_ok());
}

/// A fallback that fails too: the step fails with the fallback's error.
#[derive(Clone)]
struct Fragile;

#[workflow]
impl Fragile {
    #[step(on_failure = give_up)]
    async fn call(&self, n: u32) -> Result<u32, StepError> {
        Err(StepError::msg(format!("call {n} failed")))
    }

    async fn give_up(&self, error: StepError) -> Result<u32, StepError> {
        Err(StepError::msg(format!("no fallback either ({error})")))
    }
}

#[tokio::test]
async fn a_failing_fallback_fails_the_step_with_its_error() {
    match Engine::in_memory().run(&Fragile, 4).await.unwrap_err() {
        WorkflowError::StepFailed {
            step,
            attempts,
            error,
            ..
        } => {
            assert_eq!(step, "call");
            assert_eq!(attempts, 1);
            assert_eq!(error.to_string(), "no fallback either (call 4 failed)");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn on_a_durable_engine_the_fallbacks_output_is_journaled_and_not_run_again() {
    let path = TempDb::new("fallbacks");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Summarize::default();
    let id = RunId::from("sum-1");
    let options = RunOptions::new().run_id(id.clone());
    let first = engine
        .run_with(&wf, "long".to_owned(), options.clone())
        .await;
    assert_eq!(
        first.result.unwrap(),
        "published: fallback after: model overloaded (4 chars)"
    );
    let history = engine
        .handle::<Summarize>(id.clone())
        .history()
        .await
        .unwrap();
    assert_eq!(
        history.step("model").unwrap().output,
        Some(serde_json::json!(
            "fallback after: model overloaded (4 chars)"
        ))
    );
    // Running the id again returns the stored result: no step and no fallback runs.
    let again = engine.run_with(&wf, "long".to_owned(), options).await;
    assert!(again.result.is_ok());
    assert_eq!((wf.calls.load(SeqCst), wf.fallbacks.load(SeqCst)), (3, 1));
}

/// A fallback that also receives the step's input: the failed item itself stands in.
#[derive(Clone)]
struct Shorten;

#[workflow]
impl Shorten {
    #[step]
    async fn words(&self, text: String) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    /// Fails for long words (no retry: the input is kept for the fallback alone).
    #[step(after = words, for_each, on_failure = keep_word)]
    async fn abbreviate(&self, word: String) -> Result<String, StepError> {
        if word.len() > 5 {
            return Err(StepError::msg("too long to abbreviate"));
        }
        Ok(word[..1].to_owned())
    }

    #[step(after = abbreviate, on_failure = echo)]
    async fn join(&self, parts: Vec<String>) -> Result<String, StepError> {
        if parts.len() > 3 {
            return Err(StepError::msg("too many parts"));
        }
        Ok(parts.concat())
    }

    async fn keep_word(&self, word: String, error: StepError) -> String {
        format!("<{word}: {error}>")
    }

    async fn echo(&self, parts: Vec<String>, _error: StepError) -> String {
        parts.join("+")
    }
}

#[tokio::test]
async fn a_fallback_can_take_the_steps_input() {
    let engine = Engine::in_memory();
    assert_eq!(
        engine
            .run(&Shorten, "big sandwich".to_owned())
            .await
            .unwrap(),
        "b<sandwich: too long to abbreviate>"
    );
    // `join` fails for 4 parts; its fallback gets them.
    assert_eq!(
        engine.run(&Shorten, "a b c d".to_owned()).await.unwrap(),
        "a+b+c+d"
    );
}

#[tokio::test]
async fn a_fallback_takes_the_steps_input_on_a_durable_engine() {
    let path = TempDb::new("fallbacks-input");
    let engine = Engine::sqlite(&path).await.unwrap();
    assert_eq!(
        engine
            .run(&Shorten, "tiny elephant".to_owned())
            .await
            .unwrap(),
        "t<elephant: too long to abbreviate>"
    );
}
