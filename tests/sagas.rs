//! Sagas: compensation in reverse completion order on failure, cancellation and deadline;
//! failing compensations are reported and do not stop the others.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::prelude::*;

#[path = "common/step_log.rs"]
mod step_log;
use step_log::Log;

/// Five saga-ish steps: `a`, then `b` and `c` in parallel, then `d`, then `e`.
/// The step named by `fail_at` returns an error.
struct Five {
    fail_at: &'static str,
    log: Log,
}

impl Five {
    async fn act(&self, step: &'static str, delay_ms: u64) -> Result<u32, StepError> {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if self.fail_at == step {
            return Err(StepError::permanent(StepError::msg(format!(
                "{step} broke"
            ))));
        }
        self.log.push(format!("done {step}"));
        Ok(1)
    }
    async fn undo(&self, step: &'static str) {
        self.log.push(format!("undo {step}"));
    }
}

#[workflow]
impl Five {
    #[saga_step(compensation = undo_a)]
    async fn a(&self, _input: ()) -> Result<u32, StepError> {
        self.act("a", 1).await
    }
    #[saga_step(after = a, compensation = undo_b)]
    async fn b(&self, _x: u32) -> Result<u32, StepError> {
        self.act("b", 5).await
    }
    #[saga_step(after = a, compensation = undo_c)]
    async fn c(&self, _x: u32) -> Result<u32, StepError> {
        self.act("c", 2).await
    }
    #[saga_step(after = [b, c], compensation = undo_d)]
    async fn d(&self, _b: u32, _c: u32) -> Result<u32, StepError> {
        self.act("d", 1).await
    }
    #[step(after = d)]
    async fn e(&self, _x: u32) -> Result<u32, StepError> {
        self.act("e", 1).await
    }
    async fn undo_a(&self, _x: u32) {
        self.undo("a").await
    }
    async fn undo_b(&self, _x: u32) {
        self.undo("b").await
    }
    async fn undo_c(&self, _x: u32) {
        self.undo("c").await
    }
    async fn undo_d(&self, _x: u32) {
        self.undo("d").await
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_every_position_compensates_exactly_the_completed_saga_steps_in_reverse() {
    for fail_at in ["a", "b", "c", "d", "e"] {
        let log = Log::default();
        let error = Engine::in_memory()
            .run(
                &Five {
                    fail_at,
                    log: log.clone(),
                },
                (),
            )
            .await
            .expect_err("the injected failure fails the run");
        assert_eq!(error.step(), Some(fail_at), "{error}");
        let entries = log.entries();
        let completed_sagas: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.strip_prefix("done "))
            .filter(|s| *s != "e")
            .collect();
        let undone: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.strip_prefix("undo "))
            .collect();
        let expected: Vec<&str> = completed_sagas.iter().rev().copied().collect();
        assert_eq!(undone, expected, "failing at {fail_at}: log {entries:?}");
        let report = error.report().expect("a step failure carries a report");
        assert_eq!(report.compensated(), expected, "failing at {fail_at}");
        // Every compensation ran after every completion.
        let first_undo = entries.iter().position(|e| e.starts_with("undo"));
        let last_done = entries.iter().rposition(|e| e.starts_with("done"));
        if let (Some(u), Some(d)) = (first_undo, last_done) {
            assert!(
                d < u,
                "failing at {fail_at}: compensation before a completion: {entries:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_order_of_parallel_saga_steps_is_their_completion_order() {
    // `c` (2 ms) completes before `b` (5 ms): `d` fails, so `b` is undone before `c`.
    let log = Log::default();
    let error = Engine::in_memory()
        .run(
            &Five {
                fail_at: "d",
                log: log.clone(),
            },
            (),
        )
        .await
        .unwrap_err();
    assert_eq!(error.report().unwrap().compensated(), ["b", "c", "a"]);
}

/// `first` and `second` are saga steps; the compensation of `second` panics; `third` fails.
struct PanickyUndo {
    log: Log,
}

#[workflow]
impl PanickyUndo {
    #[saga_step(compensation = undo_first)]
    async fn first(&self, _input: ()) -> u32 {
        1
    }
    #[saga_step(after = first, compensation = undo_second, compensation_retry = 1)]
    async fn second(&self, x: u32) -> u32 {
        x + 1
    }
    #[step(after = second)]
    async fn third(&self, _x: u32) -> Result<u32, StepError> {
        Err(StepError::msg("third broke"))
    }
    async fn undo_first(&self, _x: u32) {
        self.log.push("undo first");
    }
    async fn undo_second(&self, _x: u32) {
        self.log.push("undo second attempt");
        panic!("undo_second exploded");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_compensation_is_reported_and_the_others_still_run() {
    let log = Log::default();
    let error = Engine::in_memory()
        .run(&PanickyUndo { log: log.clone() }, ())
        .await
        .unwrap_err();
    let report = error.report().unwrap();
    let failed: Vec<_> = report.failed_compensations().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].step, "second");
    assert_eq!(failed[0].compensation, "undo_second");
    assert_eq!(
        failed[0].attempts, 2,
        "compensation_retry = 1 gives two attempts"
    );
    assert!(failed[0].error.as_ref().unwrap().is_panic());
    assert_eq!(report.compensated(), ["first"]);
    assert_eq!(
        log.entries(),
        ["undo second attempt", "undo second attempt", "undo first"]
    );
    let text = error.to_string();
    assert!(text.contains("compensation `undo_second` of `second` FAILED after 2 attempt(s): panicked: undo_second exploded"), "{text}");
    assert!(
        text.contains("compensated in order: `first` (by `undo_first`)"),
        "{text}"
    );
}

/// `book` completes, then `wait` hangs until cancelled.
struct Hanging {
    log: Log,
    booked: Arc<tokio::sync::Notify>,
}

#[workflow]
impl Hanging {
    #[saga_step(compensation = unbook)]
    async fn book(&self, _input: ()) -> u32 {
        self.booked.notify_one();
        7
    }
    #[step(after = book)]
    async fn wait(&self, _x: u32) -> u32 {
        std::future::pending::<()>().await;
        0
    }
    async fn unbook(&self, x: u32) {
        self.log.push(format!("unbook {x}"));
    }
}

#[tokio::test]
async fn cancelling_a_run_mid_flight_compensates_what_completed() {
    let log = Log::default();
    let booked = Arc::new(tokio::sync::Notify::new());
    let token = CancellationToken::new();
    let workflow = Hanging {
        log: log.clone(),
        booked: booked.clone(),
    };
    let options = RunOptions::new().cancel_token(token.clone());
    let engine = Engine::in_memory();
    let run = tokio::spawn(async move { engine.run_with(&workflow, (), options).await });
    booked.notified().await;
    token.cancel();
    let finished = run.await.unwrap();
    let error = finished.result.unwrap_err();
    assert!(matches!(error, WorkflowError::Cancelled { .. }), "{error}");
    let report = error.report().unwrap();
    assert_eq!(report.cancelled, ["wait"]);
    assert_eq!(report.compensated(), ["book"]);
    assert_eq!(log.entries(), ["unbook 7"]);
    assert_eq!(
        finished.history.step("wait").unwrap().outcome,
        StepOutcome::Cancelled
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_past_its_deadline_fails_and_compensates() {
    let log = Log::default();
    let workflow = Hanging {
        log: log.clone(),
        booked: Arc::new(tokio::sync::Notify::new()),
    };
    let options = RunOptions::new().deadline(Duration::from_secs(60));
    let error = Engine::in_memory()
        .run_with(&workflow, (), options)
        .await
        .result
        .unwrap_err();
    match &error {
        WorkflowError::DeadlineExceeded {
            deadline, report, ..
        } => {
            assert_eq!(*deadline, Duration::from_secs(60));
            assert_eq!(report.compensated(), ["book"]);
        }
        other => panic!("expected a deadline error, got {other}"),
    }
    assert_eq!(log.entries(), ["unbook 7"]);
}

/// A saga `for_each`: each reserved seat is released on its own, in reverse completion order.
#[derive(Clone, Default)]
struct Seats {
    log: Log,
}

#[workflow]
impl Seats {
    #[step]
    async fn seats(&self, n: u32) -> Vec<u32> {
        (1..=n).collect()
    }

    /// Seat `k` takes `10 * (4 - k)` ms: the later seats finish first.
    #[saga_step(after = seats, for_each, compensation = release)]
    async fn reserve(&self, seat: u32) -> u32 {
        tokio::time::sleep(Duration::from_millis(u64::from(10 * (4 - seat.min(3))))).await;
        self.log.push(format!("reserve {seat}"));
        seat
    }

    #[step(after = reserve)]
    async fn pay(&self, seats: Vec<u32>) -> Result<u32, StepError> {
        Err(StepError::permanent(StepError::msg(format!(
            "card declined for {} seats",
            seats.len()
        ))))
    }

    async fn release(&self, seat: u32) {
        self.log.push(format!("release {seat}"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_saga_for_each_compensates_each_item_in_reverse_completion_order() {
    let wf = Seats::default();
    let error = Engine::in_memory().run(&wf, 3).await.unwrap_err();
    assert_eq!(
        wf.log.entries(),
        [
            "reserve 3",
            "reserve 2",
            "reserve 1",
            "release 1",
            "release 2",
            "release 3"
        ]
    );
    let report = error.report().unwrap();
    assert_eq!(report.compensated(), ["reserve", "reserve", "reserve"]);
}

#[tokio::test]
async fn a_durable_saga_for_each_journals_each_items_compensation() {
    let path = TempDb::new("sagas-seats");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Seats::default();
    let id = RunId::from("seats-1");
    let error = engine
        .run_with(&wf, 2, RunOptions::new().run_id(id.clone()))
        .await
        .result
        .unwrap_err();
    assert_eq!(
        error.report().unwrap().compensated(),
        ["reserve", "reserve"]
    );
    let compensations = engine
        .journal(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.event, workflow_core::JournalEvent::Compensated { .. }))
        .count();
    assert_eq!(compensations, 2);
}
