//! The multi-process soak: three worker processes on one store, hundreds of runs mixing
//! all-joins, any-joins, `for_each` items, saga steps and signal waits, and a random worker
//! SIGKILLed 100 times (and restarted) while they run. Checked:
//! - every run ends as an uninterrupted run would (approved runs complete with the expected
//!   output; rejected ones fail and compensate both saga steps, in reverse completion order);
//! - no step whose result was committed runs again: of all executions of a step (by its
//!   idempotency key), every one but the last was in a process that was killed afterwards;
//! - the journal holds each step (and item) once: 0 duplicate records;
//! - no run was executed by two live workers at once (the rule above: a surviving worker's
//!   execution is always the last one).
//!
//! `SOAK_KILLS` (default 100) and `SOAK_RUNS` (default 200) scale it.

// Shared with tests/ownership.rs, which uses all of it.
#[allow(dead_code)]
#[path = "ownership_worker/harness.rs"]
mod harness;
#[path = "ownership_worker/workflows.rs"]
mod workflows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use harness::{client, on_both_stores, until_all, Scratch, Worker};
use workflow_core::prelude::*;
use workflow_core::JournalEvent;
use workflows::Soak;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The output an uninterrupted run of `n` gives, approved.
fn expected_output(n: u64) -> String {
    let (l, r) = (n + 1, n + 2);
    let total: u64 = (0..3).map(|i| (l + r + i) * 10).sum();
    format!("charged {total}")
}

async fn three_workers_survive_a_hundred_kills_without_redoing_committed_work(scratch: Scratch) {
    let (kills, runs) = (env("SOAK_KILLS", 100), env("SOAK_RUNS", 200));
    let step_ms = 40;
    let mut workers: Vec<Worker> = (0..3).map(|_| Worker::start(&scratch, step_ms)).collect();
    let engine = client(&scratch).await;
    let soak = Soak {
        log: scratch.log.clone(),
        step_ms,
    };
    let ids: Vec<RunId> = (0..runs)
        .map(|n| RunId::from(format!("soak-{n}")))
        .collect();
    let mut killed = HashSet::new();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut random = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let started = Instant::now();
    // Runs are started along the kills, so that kills land in the middle of steps.
    let per_kill = runs.div_ceil(kills).max(1) as usize;
    let mut next = ids.iter().enumerate();
    for _ in 0..kills {
        for (n, id) in next.by_ref().take(per_kill) {
            let run = engine
                .start_with(&soak, n as u64, RunOptions::new().run_id(id.clone()))
                .await
                .unwrap();
            // Every fifth run is rejected; the signal may arrive before or during the wait.
            run.signal(Soak::signals().approval, n % 5 != 0)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50 + random(250))).await;
        let victim = workers.swap_remove(random(workers.len() as u64) as usize);
        killed.insert(victim.pid());
        victim.kill();
        workers.push(Worker::start(&scratch, step_ms));
    }
    for (n, id) in next {
        let run = engine
            .start_with(&soak, n as u64, RunOptions::new().run_id(id.clone()))
            .await
            .unwrap();
        run.signal(Soak::signals().approval, n % 5 != 0)
            .await
            .unwrap();
    }
    until_all(&engine, &ids, false, Duration::from_secs(120)).await;
    println!(
        "soak: {kills} kills over {:?}, {runs} runs, all finished",
        started.elapsed()
    );

    // Outcomes.
    for (n, id) in ids.iter().enumerate() {
        let record = engine.status(id).await.unwrap();
        if n % 5 == 0 {
            assert_eq!(record.summary.status, RunStatus::Failed, "{id}");
        } else {
            assert_eq!(
                record.summary.status,
                RunStatus::Completed,
                "{id}: {:?}",
                record.error
            );
            let output: String = serde_json::from_slice(&record.output.unwrap()).unwrap();
            assert_eq!(output, expected_output(n as u64), "{id}");
        }
    }

    // Executions: all but the last of each key were in a killed process.
    let effects = scratch.effects();
    let mut executions: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for e in effects.iter().filter(|e| e.event == "start") {
        executions.entry(e.key.as_str()).or_default().push(e.pid);
    }
    let mut repeated = 0;
    for (key, pids) in &executions {
        for pid in &pids[..pids.len() - 1] {
            assert!(
                killed.contains(pid),
                "{key} ran again after an execution in live worker {pid}: {pids:?}"
            );
        }
        repeated += pids.len() - 1;
    }

    // Journals: each fact once; compensations in reverse completion order.
    for (n, id) in ids.iter().enumerate() {
        let journal = engine.journal(id).await.unwrap();
        let mut seen = HashSet::new();
        let mut sagas = Vec::new();
        let mut compensated = Vec::new();
        for record in &journal {
            let fact = match &record.event {
                JournalEvent::StepCompleted { step, .. } => {
                    if step == "reserve" || step == "charge" {
                        sagas.push(step.clone());
                    }
                    format!("step {step}")
                }
                JournalEvent::ItemCompleted { step, item, .. } => format!("item {step} {item}"),
                JournalEvent::Compensated { step, .. } => {
                    compensated.push(step.clone());
                    format!("compensated {step}")
                }
                other => format!("{other:?}"),
            };
            assert!(seen.insert(fact.clone()), "{id}: {fact} journaled twice");
        }
        if n % 5 == 0 {
            sagas.reverse();
            assert_eq!(compensated, sagas, "{id}: compensation order");
        }
    }
    let compensations: HashMap<&str, usize> = effects
        .iter()
        .filter(|e| e.event == "compensate")
        .fold(HashMap::new(), |mut counts, e| {
            *counts.entry(e.key.as_str()).or_default() += 1;
            counts
        });
    assert_eq!(
        compensations.len(),
        2 * ids.len().div_ceil(5),
        "every rejected run compensated both saga steps"
    );
    assert!(
        repeated > 0,
        "no kill interrupted a step: the soak tested little"
    );
    println!(
        "soak: {} step executions repeated after a kill (at least once), {} distinct workers killed",
        repeated,
        killed.len()
    );
    for worker in workers {
        worker.stop(&scratch);
    }
}

on_both_stores!(three_workers_survive_a_hundred_kills_without_redoing_committed_work);
