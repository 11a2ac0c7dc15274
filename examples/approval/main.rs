//! Expense approval: a durable workflow on a SQLite file that waits for a manager, survives a
//! crash at any step, and releases the reserved budget when the expense is rejected.
//!
//! The workflow (in `workflow.rs`):
//!
//! ```text
//! draft ─▶ reserve_budget ─▶ manager_approval ─▶ book_payment ─▶ notify
//!          (saga: release_budget)  ▲ waits for the        (saga: refund_payment)
//!                                  │ `decision` signal, 48h
//! ```
//!
//! The program plays both sides: it starts (or resumes) run `expense-42` and, as the
//! manager, sends the `decision` signal once the run waits for it. Every side effect prints
//! its idempotency key, stable across restarts, which a real payment or budget API would use
//! to ignore a repeated request.
//!
//! ```text
//! cargo run --example approval                                   # approves, finishes
//! cargo run --example approval                                   # prints the stored result
//! cargo run --example approval -- --fresh --reject               # rejected: budget released
//! cargo run --example approval -- --fresh --crash-after reserve_budget
//! cargo run --example approval                                   # resumes: draft and
//!                                                                # reserve_budget restored
//! ```
//!
//! Options:
//! - `--db PATH`: the SQLite file (default: `workflow-approval.db` in the system temp dir);
//! - `--fresh`: delete the file first, so the run starts from scratch;
//! - `--reject`: the manager rejects (a permanent error: `release_budget` runs);
//! - `--crash-after STEP`: exit abruptly (status 137, like `kill -9`) right after STEP's result
//!   is committed to the journal. Run again without it to resume.
//!
//! A crash is simulated by a watcher task that polls the run's journal and exits the process
//! the moment STEP's output record is there; meanwhile the step after STEP is held at its start
//! (`Expense::crash_after`), so the crash lands exactly between the two steps. (After `notify`,
//! the last step, the run may already have been marked finished.)

mod workflow;

use std::path::PathBuf;
use std::time::Duration;

use workflow::{approve, train_ticket, Decision, Expense};
use workflow_core::prelude::*;
use workflow_core::JournalEvent;

const RUN_ID: &str = "expense-42";

struct Args {
    db: PathBuf,
    fresh: bool,
    reject: bool,
    crash_after: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        db: std::env::temp_dir().join("workflow-approval.db"),
        fresh: false,
        reject: false,
        crash_after: None,
    };
    let steps: Vec<&str> = Expense::definition().steps.iter().map(|s| s.name).collect();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--db" => args.db = it.next().ok_or("--db needs a path")?.into(),
            "--fresh" => args.fresh = true,
            "--reject" => args.reject = true,
            "--crash-after" => {
                let step = it.next().ok_or("--crash-after needs a step name")?;
                if !steps.contains(&step.as_str()) {
                    return Err(format!("unknown step `{step}`; expected one of: {}", steps.join(", ")));
                }
                args.crash_after = Some(step);
            }
            other => return Err(format!("unknown argument `{other}`; usage: approval [--db PATH] [--fresh] [--reject] [--crash-after STEP]")),
        }
    }
    Ok(args)
}

/// Exits the process (status 137) as soon as `step`'s output is in the run's journal.
fn spawn_crash_watcher(engine: DurableEngine, id: RunId, step: String) {
    tokio::spawn(async move {
        loop {
            if let Ok(records) = engine.journal(&id).await {
                if records
                    .iter()
                    .any(|r| matches!(&r.event, JournalEvent::StepCompleted { step: s, .. } if *s == step))
                {
                    println!("*** crash: `{step}` is committed; exiting abruptly (status 137) ***");
                    println!("*** run the same command without --crash-after to resume ***");
                    std::process::exit(137);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

/// The manager: once the run waits for `decision`, sends it (once).
fn spawn_manager(engine: DurableEngine, id: RunId, reject: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(record) = engine.status(&id).await {
                if record.summary.status.is_finished() {
                    return;
                }
                if record
                    .summary
                    .waiting_for
                    .as_deref()
                    .is_some_and(|w| w.split(',').any(|n| n == "decision"))
                {
                    let decision = if reject {
                        Decision::Reject {
                            by: "maria".into(),
                            reason: "no receipt attached".into(),
                        }
                    } else {
                        approve()
                    };
                    println!("  [manager] run waits for `decision`; sending {decision:?}");
                    let run = engine.handle::<Expense>(id.clone());
                    if let Err(e) = run.signal(Expense::signals().decision, decision).await {
                        eprintln!("  [manager] could not send the signal: {e}");
                    }
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if args.fresh {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = args.db.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
    if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    println!("store: {}", args.db.display());
    let engine = Engine::sqlite(&args.db).await?;
    let id = RunId::from(RUN_ID);

    let before = engine.status(&id).await.ok();
    match &before {
        None => println!("starting run {id}"),
        Some(record) if record.summary.status.is_finished() => {
            println!(
                "run {id} already finished ({}); its stored result:",
                record.summary.status.as_str()
            )
        }
        Some(record) => println!(
            "resuming run {id} (it was {} when the last process stopped)",
            record.summary.status.as_str()
        ),
    }
    let finished_before = before
        .as_ref()
        .is_some_and(|r| r.summary.status.is_finished());

    let mut expense = Expense::default();
    if let Some(step) = &args.crash_after {
        if finished_before {
            println!("(no crash: the run already finished; add --fresh to start over)");
        } else {
            expense.crash_after = Some(step.clone());
            spawn_crash_watcher(engine.clone(), id.clone(), step.clone());
        }
    }
    // With a crash planned before the approval, the manager stays away: the run would otherwise
    // consume the decision in the instant before the process dies.
    let crash_before_approval = matches!(
        args.crash_after.as_deref(),
        Some("draft" | "reserve_budget")
    );
    let manager = (!finished_before && !crash_before_approval)
        .then(|| spawn_manager(engine.clone(), id.clone(), args.reject));

    let finished = engine
        .execute(
            &expense,
            id.clone(),
            Some(train_ticket()),
            RunOptions::default(),
        )
        .await;
    if let Some(manager) = manager {
        manager.abort();
    }
    if args.crash_after.is_some() && !finished_before {
        // The crash is due any moment (the watcher polls every 5 ms).
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!(
            "(no crash: `{}` never completed in this run)",
            args.crash_after.as_deref().unwrap_or_default()
        );
    }

    if !finished_before {
        // `history.path` lists every completed step, restored ones included.
        let mut ran_now = finished.history.path.clone();
        for step in &finished.history.restored {
            if let Some(i) = ran_now.iter().position(|s| s == step) {
                ran_now.remove(i);
            }
        }
        println!("restored from the journal: {:?}", finished.history.restored);
        println!("ran in this process:       {ran_now:?}");
    }
    match finished.result {
        Ok(message) => println!("result: {message}"),
        // A run that failed before: print the error text stored with the run (the error
        // `execute` rebuilds from it repeats the "workflow .. run .." prefix).
        Err(_) if finished_before => println!(
            "result: error: {}",
            before.and_then(|r| r.error).unwrap_or_default()
        ),
        Err(error) => {
            println!("result: error: {error}");
            if let Some(report) = error.report() {
                if !report.compensations.is_empty() {
                    println!("compensated in this process: {:?}", report.compensated());
                }
            }
        }
    }
    Ok(())
}
