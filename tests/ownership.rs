//! Runs owned through the store, with real worker processes on one SQLite file
//! (`tests/ownership_worker/worker.rs`): a run executes in one place at a time, a killed
//! worker's runs are taken over after its lease, a worker paused past its lease writes
//! nothing more, and a cancel from another process reaches a run executing in a worker.
//!
//! Every step appends `<pid> <event> <key>` to a side-effect log outside the store, so the
//! tests count executions per process. Timings are printed, never asserted.

#[path = "ownership_worker/harness.rs"]
mod harness;
#[path = "ownership_worker/workflows.rs"]
mod workflows;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{client, on_both_stores, status, until, until_all, Scratch, Worker, LEASE_MS};
use workflow_core::prelude::*;
use workflow_core::JournalEvent;
use workflows::{Hold, HoldV2, Trip};

/// Starts run `id` of [`Hold`] and waits until a worker is inside its `hold` step.
async fn start_holding(engine: &DurableEngine, scratch: &Scratch, id: &RunId, hold_ms: u64) {
    engine
        .start_with(
            &hold(scratch, hold_ms),
            1,
            RunOptions::new().run_id(id.clone()),
        )
        .await
        .unwrap();
    let key = format!("{id}/hold");
    until(
        "a worker is inside `hold`",
        Duration::from_secs(30),
        || async {
            scratch
                .effects()
                .iter()
                .any(|e| e.event == "start" && e.key == key)
        },
    )
    .await;
}

fn hold(scratch: &Scratch, hold_ms: u64) -> Hold {
    Hold {
        log: scratch.log.clone(),
        hold_ms,
    }
}

/// The process that committed `step` of run `id`, from the pid its output carries.
async fn committed_by(engine: &DurableEngine, id: &RunId, step: &str) -> Vec<String> {
    engine
        .journal(id)
        .await
        .expect("journal")
        .into_iter()
        .filter_map(|r| match r.event {
            JournalEvent::StepCompleted { step: s, output } if s == step => {
                Some(String::from_utf8_lossy(&output).into_owned())
            }
            _ => None,
        })
        .collect()
}

async fn two_workers_share_a_store_a_killed_ones_runs_are_taken_over_and_none_runs_twice(
    scratch: Scratch,
) {
    let hold_ms = 300;
    let first = Worker::start(&scratch, hold_ms);
    let engine = client(&scratch).await;
    let ids: Vec<RunId> = (0..30).map(|i| RunId::from(format!("run-{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        engine
            .start_with(
                &hold(&scratch, hold_ms),
                i as u64,
                RunOptions::new().run_id(id.clone()),
            )
            .await
            .unwrap();
    }
    // Kill the first worker while it holds runs in the middle of `hold`.
    let victim = first.pid();
    until(
        "the first worker is inside `hold`",
        Duration::from_secs(30),
        || async {
            scratch
                .effects()
                .iter()
                .any(|e| e.pid == victim && e.event == "start")
        },
    )
    .await;
    // The second worker shares the file from now on; then the first dies.
    let second = Worker::start(&scratch, hold_ms);
    let killed_at = Instant::now();
    first.kill();
    until_all(&engine, &ids, true, Duration::from_secs(60)).await;
    let survivor = second.pid();
    let effects = scratch.effects();
    // The killed worker's interrupted steps ran again in the survivor; the first of those
    // re-executions measures the takeover.
    let interrupted: Vec<&str> = effects
        .iter()
        .filter(|e| e.pid == victim && e.event == "start")
        .filter(|e| {
            !effects
                .iter()
                .any(|f| f.pid == victim && f.event == "end" && f.key == e.key)
        })
        .map(|e| e.key.as_str())
        .collect();
    assert!(!interrupted.is_empty(), "the kill interrupted no step");
    println!(
        "takeover: {} steps interrupted by the kill; all runs done {:?} after it (lease {LEASE_MS} ms)",
        interrupted.len(),
        killed_at.elapsed()
    );
    let mut starts: HashMap<&str, Vec<u32>> = HashMap::new();
    for e in effects.iter().filter(|e| e.event == "start") {
        starts.entry(e.key.as_str()).or_default().push(e.pid);
    }
    for (key, pids) in &starts {
        match pids.as_slice() {
            [_] => {}
            // At least once: a step in flight at the kill runs again, in the survivor only.
            [first, again] => {
                assert_eq!(*first, victim, "{key} ran twice, first in {first}");
                assert_eq!(*again, survivor, "{key} ran again in {again}");
                assert!(interrupted.contains(key), "{key} ran again after it ended");
            }
            _ => panic!("{key} ran {} times: {pids:?}", pids.len()),
        }
    }
    for id in &ids {
        let outputs = committed_by(&engine, id, "hold").await;
        assert_eq!(outputs.len(), 1, "{id}: `hold` journaled {outputs:?}");
        let key = format!("{id}/hold");
        let pids = &starts[key.as_str()];
        let committer = *pids.last().expect("ran");
        assert!(
            outputs[0].contains(&committer.to_string()),
            "{id}: committed {} but the last execution was in {committer}",
            outputs[0]
        );
    }
    let (rejected, fenced) = second.stop(&scratch);
    assert_eq!((rejected, fenced), (0, 0), "the survivor lost no lease");
}

on_both_stores!(two_workers_share_a_store_a_killed_ones_runs_are_taken_over_and_none_runs_twice);

async fn a_worker_paused_past_its_lease_writes_nothing_more(scratch: Scratch) {
    let hold_ms = 2500;
    let paused = Worker::start(&scratch, hold_ms);
    let engine = client(&scratch).await;
    let id = RunId::from("fenced-1");
    let victim = paused.pid();
    start_holding(&engine, &scratch, &id, hold_ms).await;
    paused.signal("STOP");
    let stopped_at = Instant::now();
    let other = Worker::start(&scratch, hold_ms);
    until(
        "the run completes elsewhere",
        Duration::from_secs(60),
        || async { status(&engine, &id).await == RunStatus::Completed },
    )
    .await;
    let taken_over_in = stopped_at.elapsed();
    let journal_before = engine.journal(&id).await.unwrap();
    paused.signal("CONT");
    // Long enough for its step's sleep to end and its commit to be tried.
    tokio::time::sleep(Duration::from_millis(hold_ms + 1000)).await;
    let (rejected, self_fenced) = paused.stop(&scratch);
    other.stop(&scratch);

    assert_eq!(
        engine.journal(&id).await.unwrap(),
        journal_before,
        "the paused worker wrote to the journal after it resumed"
    );
    let outputs = committed_by(&engine, &id, "hold").await;
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        !outputs[0].contains(&victim.to_string()),
        "the paused worker's result was committed: {outputs:?}"
    );
    assert_eq!(
        rejected + self_fenced,
        1,
        "the paused worker's one run was not fenced (rejected writes {rejected}, self-fenced {self_fenced})"
    );
    let starts: Vec<u32> = scratch
        .effects()
        .iter()
        .filter(|e| e.event == "start" && e.key == "fenced-1/hold")
        .map(|e| e.pid)
        .collect();
    // At least once, and one extra execution for the step in flight when the lease was lost.
    assert_eq!(starts.len(), 2, "`hold` executions: {starts:?}");
    assert_eq!(starts[0], victim);
    println!(
        "fencing: taken over {taken_over_in:?} after SIGSTOP (lease {LEASE_MS} ms); late writes \
         rejected {rejected}, runs self-fenced {self_fenced}; `hold` ran twice (once per owner)"
    );
}

on_both_stores!(a_worker_paused_past_its_lease_writes_nothing_more);

async fn a_cancel_from_another_process_reaches_a_running_run_and_compensates(scratch: Scratch) {
    let travel_ms = 20_000;
    let worker = Worker::start(&scratch, travel_ms);
    let engine = client(&scratch).await;
    let id = RunId::from("trip-1");
    let trip = Trip {
        log: scratch.log.clone(),
        travel_ms,
    };
    engine
        .start_with(&trip, 1, RunOptions::new().run_id(id.clone()))
        .await
        .unwrap();
    until(
        "the trip is travelling",
        Duration::from_secs(30),
        || async { scratch.effects().iter().any(|e| e.event == "start") },
    )
    .await;
    let sent = Instant::now();
    assert_eq!(engine.cancel(&id).await.unwrap(), RunStatus::Claimed);
    until("the run is cancelled", Duration::from_secs(10), || async {
        status(&engine, &id).await == RunStatus::Cancelled
    })
    .await;
    println!(
        "cancel reached the worker and finished the run in {:?}",
        sent.elapsed()
    );
    let effects = scratch.effects();
    let events: Vec<(&str, &str)> = effects
        .iter()
        .map(|e| (e.event.as_str(), e.key.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("run", "trip-1/book"),
            ("start", "trip-1/travel"),
            ("compensate", "trip-1/unbook")
        ]
    );
    assert!(effects.iter().all(|e| e.pid == worker.pid()));
    // The run ended in the worker process; this process reads the same structured error
    // back from the store: what stopped it, and how its saga step was compensated.
    match engine.wait::<Trip>(&id).await {
        Err(WorkflowError::Cancelled { report, .. }) => {
            assert_eq!(report.compensated(), ["book"]);
            assert_eq!(report.compensations[0].compensation, "unbook");
        }
        other => panic!("expected Cancelled with its report, got {other:?}"),
    }
    worker.stop(&scratch);
}

on_both_stores!(a_cancel_from_another_process_reaches_a_running_run_and_compensates);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_heartbeat_fences_itself_and_its_step_runs_again_once() {
    use sqlx::Connection;

    let scratch = Scratch::new("self-fence");
    let hold_ms = 3000;
    let worker = Worker::start(&scratch, hold_ms);
    let engine = client(&scratch).await;
    let id = RunId::from("blocked-1");
    start_holding(&engine, &scratch, &id, hold_ms).await;
    // Another connection holds the write lock for twice the lease: no heartbeat gets through.
    let url = format!("sqlite://{}", scratch.db.display());
    let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    until("the run completes", Duration::from_secs(60), || async {
        status(&engine, &id).await == RunStatus::Completed
    })
    .await;
    let (rejected, self_fenced) = worker.stop(&scratch);
    assert_eq!(
        (rejected, self_fenced),
        (0, 1),
        "(rejected writes, self-fenced runs)"
    );
    let effects = scratch.effects();
    let executions: Vec<&str> = effects
        .iter()
        .filter(|e| e.key == "blocked-1/hold")
        .map(|e| e.event.as_str())
        .collect();
    // The fenced execution was dropped before its end; the run's next claim ran it again.
    assert_eq!(executions, ["start", "start", "end"]);
    assert_eq!(committed_by(&engine, &id, "hold").await.len(), 1);
}

async fn a_queue_limit_holds_across_three_workers(scratch: Scratch) {
    use workflow_core::store::QueueConfig;

    let hold_ms = 150;
    let workers: Vec<Worker> = (0..3).map(|_| Worker::start(&scratch, hold_ms)).collect();
    let engine = client(&scratch).await;
    let limit = 2;
    engine
        .set_queue(QueueConfig {
            queue: "limited".into(),
            concurrency: Some(limit),
            rate_per_sec: None,
            burst: 1,
        })
        .await
        .unwrap();
    let ids: Vec<RunId> = (0..24).map(|i| RunId::from(format!("q-{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        let options = RunOptions::new().queue("limited");
        engine
            .start_with(
                &hold(&scratch, hold_ms),
                i as u64,
                options.run_id(id.clone()),
            )
            .await
            .unwrap();
    }
    until_all(&engine, &ids, true, Duration::from_secs(60)).await;
    // The log is in global order: count `hold` bodies between their start and end.
    let (mut running, mut most) = (0usize, 0usize);
    let mut pids = std::collections::HashSet::new();
    for effect in scratch.effects() {
        match effect.event.as_str() {
            "start" => {
                running += 1;
                most = most.max(running);
                pids.insert(effect.pid);
            }
            "end" => running -= 1,
            _ => {}
        }
    }
    println!(
        "queue limit {limit}: at most {most} runs in `hold` at once, over {} workers",
        pids.len()
    );
    assert!(
        most <= limit as usize,
        "{most} runs of the queue ran at once"
    );
    assert_eq!(
        most, limit as usize,
        "the limit was never reached: the test tested little"
    );
    for worker in workers {
        worker.stop(&scratch);
    }
}

on_both_stores!(a_queue_limit_holds_across_three_workers);

async fn a_deadline_that_passes_while_no_worker_runs_is_enforced_on_takeover(scratch: Scratch) {
    let travel_ms = 20_000;
    let first = Worker::start(&scratch, travel_ms);
    let engine = client(&scratch).await;
    let id = RunId::from("late-1");
    let trip = Trip {
        log: scratch.log.clone(),
        travel_ms,
    };
    let options = RunOptions::new().deadline(Duration::from_millis(1500));
    engine
        .start_with(&trip, 1, options.run_id(id.clone()))
        .await
        .unwrap();
    until(
        "the trip is travelling",
        Duration::from_secs(30),
        || async { scratch.effects().iter().any(|e| e.event == "start") },
    )
    .await;
    first.kill();
    // Nobody runs the workflow while its deadline passes.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let second = Worker::start(&scratch, travel_ms);
    until("the run ends", Duration::from_secs(30), || async {
        status(&engine, &id).await.is_finished()
    })
    .await;
    let record = engine.status(&id).await.unwrap();
    assert_eq!(record.summary.status, RunStatus::Failed);
    let error = record.error.unwrap_or_default();
    assert!(error.contains("deadline"), "{error}");
    let events: Vec<(u32, String)> = scratch
        .effects()
        .into_iter()
        .map(|e| (e.pid, format!("{} {}", e.event, e.key)))
        .collect();
    let takeover = second.pid();
    assert_eq!(
        events
            .iter()
            .filter(|(pid, _)| *pid == takeover)
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>(),
        ["compensate late-1/unbook"],
        "after the deadline, the new owner only compensates: {events:?}"
    );
    second.stop(&scratch);
}

on_both_stores!(a_deadline_that_passes_while_no_worker_runs_is_enforced_on_takeover);

#[test]
fn four_processes_creating_one_new_store_at_once_all_open_it() {
    let scratch = Scratch::new("create");
    for _ in 0..5 {
        scratch.remove();
        let workers: Vec<Worker> = (0..4).map(|_| spawn_unready(&scratch)).collect();
        for worker in workers {
            let mut worker = worker;
            let mut line = String::new();
            worker.stdout.read_line(&mut line).expect("read the worker");
            if !line.starts_with("ready ") {
                let mut said = String::new();
                if let Some(stderr) = worker.child.stderr.as_mut() {
                    let _ = std::io::Read::read_to_string(stderr, &mut said);
                }
                let status = worker.child.wait();
                panic!("a worker failed to open: {line:?} {said} {status:?}");
            }
        }
    }
}

#[test]
fn a_one_byte_file_is_refused_and_left_untouched() {
    let scratch = Scratch::new("one-byte");
    std::fs::write(&scratch.db, b"x").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ownership-worker"))
        .arg(&scratch.db)
        .arg(&scratch.log)
        .arg("1000")
        .arg("10")
        .output()
        .expect("run the worker");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not a workflow store"), "{said}");
    assert_eq!(std::fs::read(&scratch.db).unwrap(), b"x");
    assert!(!Path::new(&format!("{}-wal", scratch.db.display())).exists());
}

/// Starts a worker without waiting for it.
fn spawn_unready(scratch: &Scratch) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ownership-worker"))
        .arg(&scratch.db)
        .arg(&scratch.log)
        .arg(LEASE_MS.to_string())
        .arg("10")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the ownership worker");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Worker { child, stdout }
}

async fn a_second_process_writing_at_full_speed_is_never_refused_and_strands_nothing(
    scratch: Scratch,
) {
    use workflow_core::store::StoreError;

    let seconds: u64 = std::env::var("OWNERSHIP_POUND_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let hold_ms = 50;
    let worker = Worker::start(&scratch, hold_ms);
    let engine = client(&scratch).await;
    let mut ids = Vec::new();
    for i in 0..100u64 {
        let id = RunId::from(format!("base-{i}"));
        engine
            .start_with(
                &hold(&scratch, hold_ms),
                i,
                RunOptions::new().run_id(id.clone()),
            )
            .await
            .unwrap();
        ids.push((id, i));
    }
    let (mut sends, mut refused, mut cancelled) = (0u64, Vec::new(), Vec::new());
    let until_at = Instant::now() + Duration::from_secs(seconds);
    let mut n = 100u64;
    while Instant::now() < until_at {
        let id = RunId::from(format!("more-{n}"));
        let started = engine
            .start_with(
                &hold(&scratch, hold_ms),
                n,
                RunOptions::new().run_id(id.clone()),
            )
            .await;
        sends += 1;
        match started {
            Ok(_) => ids.push((id.clone(), n)),
            Err(error) => refused.push(error.to_string()),
        }
        let (target, _) = &ids[(n as usize * 7) % ids.len()];
        sends += 1;
        // `Hold` waits for no signal, so no handle sends one: the signal is written to the
        // store as the untyped entry point used to (a write like any other; nothing consumes it).
        let nudge = serde_json::to_vec(&n).unwrap();
        match engine.store().send_signal(target, "nudge", nudge).await {
            Ok(()) | Err(StoreError::RunFinished { .. }) => {}
            Err(error) => refused.push(error.to_string()),
        }
        if n.is_multiple_of(10) {
            sends += 1;
            match engine.cancel(&id).await {
                Ok(_) => cancelled.push(id),
                Err(error) => refused.push(error.to_string()),
            }
        }
        n += 1;
    }
    assert!(
        refused.is_empty(),
        "{} of {sends} sends refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    until_all(
        &engine,
        ids.iter().map(|(id, _)| id),
        false,
        Duration::from_secs(120),
    )
    .await;
    let mut changed = Vec::new();
    for (id, input) in &ids {
        let record = engine.status(id).await.unwrap();
        let expected_cancel = cancelled.contains(id);
        match record.summary.status {
            RunStatus::Completed => {
                let output = String::from_utf8_lossy(record.output.as_deref().unwrap_or_default())
                    .into_owned();
                if !output.starts_with(&format!("\"{input} held by")) {
                    changed.push(format!("{id}: {output}"));
                }
            }
            // A cancel that reached the run before its end.
            RunStatus::Cancelled if expected_cancel => {}
            other => changed.push(format!("{id}: {other:?} {:?}", record.error)),
        }
    }
    println!(
        "{sends} sends in {seconds} s from a second process, {} runs: 0 refused, 0 stranded, {} cancelled",
        ids.len(),
        cancelled.len()
    );
    assert!(changed.is_empty(), "outcomes changed: {changed:?}");
    worker.stop(&scratch);
}

on_both_stores!(a_second_process_writing_at_full_speed_is_never_refused_and_strands_nothing);

async fn a_rolling_deploy_runs_each_version_only_on_workers_that_have_it(scratch: Scratch) {
    let hold_ms = 20;
    let old = Worker::start_deployed(&scratch, hold_ms, "v1");
    let new = Worker::start_deployed(&scratch, hold_ms, "v2");
    let engine = client(&scratch).await;
    let v2 = HoldV2 {
        log: scratch.log.clone(),
        hold_ms,
    };
    let mut runs = Vec::new();
    for n in 0..10u64 {
        let id = RunId::from(format!("v1-{n}"));
        engine
            .start_with(
                &hold(&scratch, hold_ms),
                n,
                RunOptions::new().run_id(id.clone()),
            )
            .await
            .unwrap();
        runs.push((id, old.pid()));
        let id = RunId::from(format!("v2-{n}"));
        engine
            .start_with(&v2, n, RunOptions::new().run_id(id.clone()))
            .await
            .unwrap();
        runs.push((id, new.pid()));
    }
    until_all(
        &engine,
        runs.iter().map(|(id, _)| id),
        true,
        Duration::from_secs(60),
    )
    .await;
    let effects = scratch.effects();
    for (id, pid) in &runs {
        let prefix = format!("{id}/");
        let ran_in: HashSet<u32> = effects
            .iter()
            .filter(|e| e.key.starts_with(&prefix))
            .map(|e| e.pid)
            .collect();
        assert_eq!(ran_in, HashSet::from([*pid]), "{id} ran in {ran_in:?}");
    }

    // The old version's last worker leaves: its new runs wait, listed, never failed.
    old.stop(&scratch);
    let late = RunId::from("v1-late");
    engine
        .start_with(
            &hold(&scratch, hold_ms),
            99,
            RunOptions::new().run_id(late.clone()),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = engine.status(&late).await.unwrap().summary;
    assert_eq!(waiting.status, RunStatus::Ready, "{waiting:?}");
    assert_eq!(waiting.definition_hash, Hold::definition().hash);
    // A worker with the old version comes back and drains it.
    let again = Worker::start_deployed(&scratch, hold_ms, "v1");
    until(
        "the late run completes",
        Duration::from_secs(30),
        || async { status(&engine, &late).await == RunStatus::Completed },
    )
    .await;
    again.stop(&scratch);
    new.stop(&scratch);
}

on_both_stores!(a_rolling_deploy_runs_each_version_only_on_workers_that_have_it);

async fn a_worker_shutting_down_finishes_its_runs_first(scratch: Scratch) {
    let hold_ms = 800;
    let worker = Worker::start(&scratch, hold_ms);
    let engine = client(&scratch).await;
    let id = RunId::from("graceful-1");
    start_holding(&engine, &scratch, &id, hold_ms).await;
    // The stop file makes the worker call `shutdown` with 5 s of grace: its run finishes.
    let (rejected, fenced) = worker.stop(&scratch);
    assert_eq!((rejected, fenced), (0, 0));
    assert_eq!(status(&engine, &id).await, RunStatus::Completed);
    assert!(engine.list(&Default::default()).await.unwrap().runs[0]
        .owner
        .is_none());
}

on_both_stores!(a_worker_shutting_down_finishes_its_runs_first);
