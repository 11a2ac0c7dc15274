//! `after = first(a, b)`: the step fires once with the first output, and the losers are
//! cancelled: their in-flight steps dropped (the run does not wait for them) and their
//! completed saga steps compensated, while the run goes on.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use futures::StreamExt;
use workflow_core::prelude::*;

#[path = "common/step_log.rs"]
mod step_log;
use step_log::Log;

/// Pushes `dropped <name>` when the future holding it is dropped before it finished.
struct DropWatch(Log, &'static str, bool);

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.2 {
            self.0.push(format!("dropped {}", self.1));
        }
    }
}

/// Two model calls race; the slow one's branch booked a slot (a saga step) first.
#[derive(Clone, Default)]
struct Race {
    log: Log,
    slow_ms: Arc<AtomicUsize>,
}

#[workflow]
impl Race {
    #[step]
    async fn prompt(&self, q: String) -> String {
        q
    }

    #[step(after = prompt)]
    async fn fast_model(&self, q: String) -> String {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.log.push("fast answered");
        format!("fast: {q}")
    }

    #[saga_step(after = prompt, compensation = release_slot)]
    async fn book_slot(&self, q: String) -> String {
        self.log.push("slot booked");
        q
    }

    #[step(after = book_slot)]
    async fn slow_model(&self, q: String) -> String {
        let mut watch = DropWatch(self.log.clone(), "slow_model", false);
        let ms = self.slow_ms.load(SeqCst) as u64;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        watch.2 = true;
        self.log.push("slow answered");
        format!("slow: {q}")
    }

    #[step(after = first(fast_model, slow_model))]
    async fn answer(&self, text: String) -> String {
        format!("answer = {text}")
    }

    async fn release_slot(&self, _q: String) {
        self.log.push("slot released");
    }
}

fn race(slow_ms: usize) -> Race {
    let wf = Race::default();
    wf.slow_ms.store(slow_ms, SeqCst);
    wf
}

/// Paused time: the models' sleeps end in deadline order, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn the_first_output_wins_and_the_losers_branch_is_cancelled_and_compensated() {
    // The loser would sleep an hour: the run finishing at all shows it did not wait for it.
    let wf = race(3_600_000);
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        Engine::in_memory().run_with(&wf, "q".to_owned(), RunOptions::new()),
    )
    .await
    .expect("the run waited for the loser");
    assert_eq!(done.result.unwrap(), "answer = fast: q");
    assert_eq!(
        wf.log.entries(),
        [
            "slot booked",
            "fast answered",
            "dropped slow_model",
            "slot released"
        ]
    );
    let history = done.history;
    assert_eq!(
        history.step("slow_model").unwrap().outcome,
        StepOutcome::Cancelled
    );
    assert_eq!(
        history.step("answer").unwrap().outcome,
        StepOutcome::Completed
    );
}

/// Paused time: the models' sleeps end in deadline order, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn events_show_the_cancelled_loser_and_its_compensation() {
    let engine = Engine::in_memory();
    let run = engine
        .start(&race(3_600_000), "q".to_owned())
        .await
        .unwrap();
    let events: Vec<RunEvent<RaceStep>> = run.events().collect().await;
    assert!(events.contains(&RunEvent::StepCancelled {
        step: RaceStep::SlowModel
    }));
    assert!(events.contains(&RunEvent::Compensated {
        step: RaceStep::BookSlot,
        failed: false
    }));
    assert_eq!(run.wait().await.unwrap(), "answer = fast: q");
}

/// Paused time: the models' sleeps end in deadline order, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn when_the_other_racer_is_faster_it_wins() {
    let wf = race(1);
    wf.log.push("start");
    let out = Engine::in_memory().run(&wf, "q".to_owned()).await.unwrap();
    assert_eq!(out, "answer = slow: q");
    // The fast model's future was dropped mid-sleep; nothing of it was logged, and the slow
    // branch's booking stands.
    assert_eq!(wf.log.entries(), ["start", "slot booked", "slow answered"]);
}

#[tokio::test]
async fn a_durable_race_journals_the_compensation_and_finishes() {
    let path = TempDb::new("races");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = race(3_600_000);
    let id = RunId::from("race-1");
    let done = engine
        .run_with(&wf, "q".to_owned(), RunOptions::new().run_id(id.clone()))
        .await;
    assert_eq!(done.result.unwrap(), "answer = fast: q");
    let journal = engine.journal(&id).await.unwrap();
    let compensated = journal
        .iter()
        .filter(|r| matches!(&r.event, workflow_core::JournalEvent::Compensated { step, .. } if step == "book_slot"))
        .count();
    assert_eq!(compensated, 1, "{journal:?}");
    assert_eq!(
        wf.log.entries(),
        [
            "slot booked",
            "fast answered",
            "dropped slow_model",
            "slot released"
        ]
    );
}
