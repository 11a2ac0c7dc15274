//! Faults and bad input never strand a run and never re-run committed work: values the
//! journal cannot read back, signal payloads that do not decode, a run id reused with another
//! input, unreadable rows, one request's failure inside a shared group commit.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use temp_db::TempDb;

use sqlx::Connection;
use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::store::{Claim, JournalRecord, NewRun, SqliteStore, Store, WorkerId};
use workflow_core::{JournalEvent, WorkerOptions};

struct Measure;

#[workflow]
impl Measure {
    #[step]
    async fn ratio(&self, x: f64) -> f64 {
        x / 0.0 * 0.0 // NaN for every x
    }

    #[step(after = ratio)]
    async fn report(&self, r: f64) -> String {
        format!("{r}")
    }
}

#[tokio::test]
async fn a_value_the_journal_cannot_read_back_is_refused_naming_the_step() {
    let db = TempDb::new("nan");
    let engine = Engine::sqlite(&db).await.unwrap();
    let error = engine.run(&Measure, 1.0).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("`ratio`"), "{text}");
    assert!(text.contains("cannot be stored"), "{text}");
    // Nothing unreadable was committed: the journal holds the stop only.
    let id = error.run_id().clone();
    let journal = engine.journal(&id).await.unwrap();
    let kinds: Vec<&str> = journal.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds, ["stopped"]);
    assert_eq!(
        engine.status(&id).await.unwrap().summary.status,
        RunStatus::Failed
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
enum Decision {
    Approve,
    Reject,
}

#[derive(Clone)]
struct Gate;

#[workflow]
impl Gate {
    #[step]
    async fn ask(&self, n: u32) -> u32 {
        n
    }

    #[step(after = ask)]
    async fn decide(&self, n: u32, decision: Signal<Decision>) -> String {
        format!("{n}: {:?}", decision.received())
    }
}

#[tokio::test]
async fn a_signal_payload_that_does_not_decode_fails_the_run_naming_the_signal() {
    let db = TempDb::new("bad-signal");
    let engine = Engine::sqlite(&db).await.unwrap();
    let run = engine.start(&Gate, 5).await.unwrap();
    let id = run.id().clone();
    // The wrong type, written to the store directly (the handle's entry points refuse it
    // before storing anything: see the next test).
    engine
        .store()
        .send_signal(&id, "decision", serde_json::to_vec(&42u32).unwrap())
        .await
        .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(30), engine.wait::<Gate>(&id))
        .await
        .expect("the run ended")
        .unwrap_err();
    let stored = engine.status(&id).await.unwrap();
    assert_eq!(stored.summary.status, RunStatus::Failed, "{error}");
    let text = stored.error.unwrap_or_default();
    assert!(text.contains("signal `decision`"), "{text}");
    assert!(text.contains("`decide`"), "{text}");
}

#[tokio::test]
async fn a_json_signal_that_does_not_decode_or_is_unknown_is_refused_before_it_is_stored() {
    let db = TempDb::new("bad-json-signal");
    let engine = Engine::sqlite(&db).await.unwrap();
    let run = engine.start(&Gate, 5).await.unwrap();
    // The same wrong payload as above, through the untyped entry point: refused at send time.
    match run.signal_json("decision", &serde_json::json!(42)).await {
        Err(WorkflowError::BadSignal { run_id, signal, .. }) => {
            assert_eq!(&run_id, run.id());
            assert_eq!(signal, "decision");
        }
        other => panic!("expected BadSignal, got {other:?}"),
    }
    // A name the workflow does not wait for: refused too.
    match run
        .signal_json("descision", &serde_json::json!("Approve"))
        .await
    {
        Err(WorkflowError::UnknownSignal {
            run_id,
            signal,
            known,
            ..
        }) => {
            assert_eq!(&run_id, run.id());
            assert_eq!(signal, "descision");
            assert_eq!(known, ["decision"]);
        }
        other => panic!("expected UnknownSignal, got {other:?}"),
    }
    // Nothing was stored: no signal waits for the run.
    assert!(!engine
        .store()
        .has_signal(run.id(), "decision")
        .await
        .unwrap());
    assert!(!engine
        .store()
        .has_signal(run.id(), "descision")
        .await
        .unwrap());
    // A correct typed signal: the run finishes as it should.
    run.signal(Gate::signals().decision, Decision::Approve)
        .await
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the run ended")
        .unwrap();
    assert_eq!(output, "5: Some(Approve)");
    assert_eq!(run.status().await.unwrap(), RunStatus::Completed);
}

#[tokio::test]
async fn a_run_id_reused_with_another_input_is_a_typed_conflict() {
    let db = TempDb::new("conflict");
    let engine = Engine::sqlite(&db).await.unwrap();
    let id = RunId::from("gate-1");
    engine
        .start_with_id(&Gate, id.clone(), 1)
        .await
        .expect("first start");
    // The same input again: idempotent.
    engine
        .start_with_id(&Gate, id.clone(), 1)
        .await
        .expect("same input");
    match engine.start_with_id(&Gate, id.clone(), 2).await {
        Err(WorkflowError::InputConflict { run_id, .. }) => assert_eq!(run_id, id),
        other => panic!("expected InputConflict, got {other:?}"),
    }
}

#[tokio::test]
async fn one_requests_failure_in_a_group_commit_fails_no_other_request() {
    let db = TempDb::new("isolation");
    let store = SqliteStore::open(&db).await.unwrap();
    let worker = WorkerId::from("test-worker");
    store
        .register_worker(&workflow_core::store::WorkerRegistration {
            worker: worker.clone(),
            lease: Duration::from_secs(60),
        })
        .await
        .unwrap();
    let mut claims = Vec::new();
    for i in 0..30 {
        let run_id = RunId::from(format!("r{i}"));
        store
            .create_run(&NewRun {
                run_id: run_id.clone(),
                workflow: "W".into(),
                version: 1,
                definition_hash: 1,
                queue: "default".into(),
                deadline_at: None,
                input: b"1".to_vec(),
                trace_context: None,
            })
            .await
            .unwrap();
        let claimed = store.claim_run(&worker, &run_id).await.unwrap().unwrap();
        claims.push(claimed.claim);
    }
    let record = |seq| JournalRecord {
        seq,
        event: JournalEvent::StepCompleted {
            step: "a".into(),
            output: b"1".to_vec(),
        },
    };
    store.append(&claims[0], vec![record(0)]).await.unwrap();
    // One conflicting write (seq 0 again) queued with 29 good ones: one group commit.
    let stale = Claim {
        epoch: claims[1].epoch + 7,
        ..claims[1].clone()
    };
    let writes = claims.iter().enumerate().map(|(i, claim)| {
        let store = &store;
        let stale = &stale;
        async move {
            match i {
                0 => store.append(claim, vec![record(0)]).await,
                1 => store.append(stale, vec![record(0)]).await,
                _ => store.append(claim, vec![record(0)]).await,
            }
        }
    });
    let results = futures::future::join_all(writes).await;
    assert!(results[0].is_err(), "a duplicate record was accepted");
    assert!(
        matches!(
            results[1],
            Err(workflow_core::store::StoreError::LeaseLost { .. })
        ),
        "{:?}",
        results[1]
    );
    for (i, result) in results.iter().enumerate().skip(2) {
        assert!(result.is_ok(), "run r{i}: {result:?}");
        let journal = store.journal(&claims[i].run_id).await.unwrap();
        assert_eq!(journal.len(), 1);
    }
}

#[derive(Clone)]
struct Echo;

#[workflow]
impl Echo {
    #[step]
    async fn echo(&self, n: u32) -> String {
        format!("{n}: None")
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_stored_input_or_output_is_detected() {
    let db = TempDb::new("flip");
    let engine = Engine::sqlite(&db).await.unwrap();
    let done = RunId::from("done");
    engine
        .execute(&Echo, done.clone(), Some(7), RunOptions::default())
        .await
        .result
        .unwrap();
    let waiting = engine.start_with_id(&Gate, "waiting", 8).await.unwrap();
    let url = format!("sqlite://{}", db.display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE wf_runs SET input = CAST('9' AS BLOB) WHERE run_id = ?")
        .bind(waiting.id().as_str())
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE wf_runs SET output = CAST('\"1: None\"' AS BLOB) WHERE run_id = ?")
        .bind(done.as_str())
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();
    for id in [waiting.id(), &done] {
        match engine.status(id).await {
            Err(workflow_core::store::StoreError::Corrupt { run_id, seq, .. }) => {
                assert_eq!(&run_id, id);
                assert_eq!(seq, None, "a run row, not a journal record");
            }
            other => panic!("{id}: expected Corrupt, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unreadable_run_rows_are_reported_and_the_other_runs_recover() {
    let db = TempDb::new("bad-rows");
    {
        // Three runs, never executed (a client that claims nothing).
        let store = SqliteStore::open(&db).await.unwrap();
        let client = DurableEngine::with_options(store, WorkerOptions::default().claim_runs(false));
        for id in ["good-1", "bad-version", "bad-id", "good-2"] {
            client.start_with_id(&Echo, id, 3).await.unwrap();
        }
    }
    let url = format!("sqlite://{}", db.display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE wf_runs SET version = 'one' WHERE run_id = 'bad-version'")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE wf_runs SET run_id = CAST(X'FFFE00' AS BLOB) WHERE run_id = 'bad-id'")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    let engine = Engine::sqlite(&db).await.unwrap();
    let recovery = engine.recover(&Echo).await.unwrap();
    assert_eq!(recovery.unreadable.len(), 2, "{:?}", recovery.unreadable);
    assert!(recovery
        .unreadable
        .iter()
        .any(|e| e.to_string().contains("bad-version")));
    for id in ["good-1", "good-2"] {
        let id = RunId::from(id);
        let output = tokio::time::timeout(Duration::from_secs(30), engine.wait::<Echo>(&id))
            .await
            .expect("a healthy run recovers")
            .unwrap();
        assert_eq!(output, "3: None");
    }
}

#[derive(Clone, Default)]
struct Counted {
    calls: std::sync::Arc<AtomicUsize>,
}

#[workflow]
impl Counted {
    #[step]
    async fn slow(&self, n: u32) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        n + 1
    }
}

#[tokio::test]
async fn start_then_resume_in_one_engine_runs_each_step_once() {
    let db = TempDb::new("start-resume");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Counted::default();
    let id = engine
        .start_with_id(&wf, "same-1", 1)
        .await
        .unwrap()
        .id()
        .clone();
    let resumed = engine.resume(&wf, &id).await;
    assert_eq!(resumed.result.unwrap(), 2);
    assert_eq!(
        wf.calls.load(SeqCst),
        1,
        "the step ran twice in one process"
    );
    assert_eq!(
        engine.status(&id).await.unwrap().summary.status,
        RunStatus::Completed
    );
}

#[tokio::test]
async fn waiting_on_a_run_of_another_workflow_is_a_wrong_workflow_error() {
    let db = TempDb::new("wrong-wait");
    let engine = Engine::sqlite(&db).await.unwrap();
    let id = RunId::from("echo-1");
    engine
        .execute(&Echo, id.clone(), Some(5), RunOptions::default())
        .await
        .result
        .unwrap();
    match engine.wait::<Counted>(&id).await {
        Err(WorkflowError::WrongWorkflow { found, .. }) => assert_eq!(found, "Echo"),
        other => panic!("expected WrongWorkflow, got {other:?}"),
    }
}

/// Three steps, then a signal wait; counts each body's executions.
#[derive(Clone, Default)]
struct Tally {
    runs: std::sync::Arc<[AtomicUsize; 3]>,
}

#[workflow]
impl Tally {
    #[step]
    async fn one(&self, n: u32) -> u32 {
        self.runs[0].fetch_add(1, SeqCst);
        n + 1
    }

    #[step(after = one)]
    async fn two(&self, n: u32) -> u32 {
        self.runs[1].fetch_add(1, SeqCst);
        n + 1
    }

    #[step(after = two)]
    async fn three(&self, n: u32, go: Signal<u32>) -> u32 {
        self.runs[2].fetch_add(1, SeqCst);
        n + go.received().unwrap_or(0)
    }
}

/// Parks a `Tally` run (records: 0 `one`'s output, 1 `two`'s output, 2 the wait), deletes
/// journal record `seq`, signals the run, and returns why it was parked for repair, after
/// checking that no committed step ran again.
async fn lose_record(name: &str, seq: i64) -> String {
    let db = TempDb::new(name);
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Tally::default();
    let run = engine.start(&wf, 1).await.unwrap();
    let id = run.id().clone();
    let parked = || async {
        let run = engine.status(&id).await.unwrap().summary;
        run.status == RunStatus::Waiting
    };
    let started = std::time::Instant::now();
    while !parked().await {
        assert!(started.elapsed() < Duration::from_secs(30), "never parked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = format!("sqlite://{}", db.display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let deleted = sqlx::query("DELETE FROM wf_journal WHERE run_id = ? AND seq = ?")
        .bind(id.as_str())
        .bind(seq)
        .execute(&mut raw)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 1);
    raw.close().await.unwrap();

    run.signal(Tally::signals().go, 10).await.unwrap();
    let started = std::time::Instant::now();
    let reason = loop {
        let run = engine.status(&id).await.unwrap().summary;
        if let Some(reason) = run.waiting_for.filter(|w| w.starts_with("repair")) {
            break reason;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not reported");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let counts: Vec<usize> = wf.runs.iter().map(|c| c.load(SeqCst)).collect();
    assert_eq!(counts, [1, 1, 0], "a committed step ran again");
    reason
}

#[tokio::test]
async fn a_journal_record_lost_from_the_middle_is_reported_and_nothing_runs_again() {
    let reason = lose_record("lost-middle", 1).await;
    assert!(
        reason.contains("journal gap: expected record #1"),
        "{reason}"
    );
}

#[tokio::test]
async fn journal_records_lost_from_the_end_are_reported_and_nothing_runs_again() {
    let reason = lose_record("lost-end", 2).await;
    assert!(
        reason.contains("the journal has 2 records, but the run had 3"),
        "{reason}"
    );
}
