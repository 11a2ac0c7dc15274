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
//! cargo run --example approval -- --fresh --wait-for-manager     # approve it in the dashboard
//! cargo run --example approval -- --fresh --crash-after reserve_budget
//! cargo run --example approval                                   # resumes: draft and
//!                                                                # reserve_budget restored
//! ```
//!
//! Options:
//! - `--db PATH`: the SQLite file (default: `workflow-approval.db` in the system temp dir);
//! - `--fresh`: delete the file first, so the run starts from scratch;
//! - `--reject`: the manager rejects (a permanent error: `release_budget` runs);
//! - `--wait-for-manager`: the program does not answer: the run waits until a person sends the
//!   `decision` (the dashboard's inbox: `workflow --store PATH serve`, or `workflow runs signal`);
//! - `--crash-after STEP`: exit abruptly (status 137, like `kill -9`) right after STEP's result
//!   is committed to the journal. Run again without it to resume.
//!
//! The program follows the run through its typed event stream (`RunHandle::events`): the
//! manager answers when the run reports it waits for `decision`, and a crash is simulated by
//! exiting the process the moment the event stream says STEP completed (its result is in the
//! journal). The step after STEP may have started by then: steps run at least once, so its
//! side effect prints the same idempotency key when the run resumes, and a real payment or
//! budget API ignores the repeat. (After a late step the run may even have finished.)

mod workflow;

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use workflow::{approve, train_ticket, Decision, Expense, ExpenseStep};
use workflow_core::prelude::*;

const RUN_ID: &str = "expense-42";

struct Args {
    db: PathBuf,
    fresh: bool,
    reject: bool,
    crash_after: Option<String>,
    wait_for_manager: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        db: std::env::temp_dir().join("workflow-approval.db"),
        fresh: false,
        reject: false,
        crash_after: None,
        wait_for_manager: false,
    };
    let steps: Vec<&str> = Expense::definition().steps.iter().map(|s| s.name).collect();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--db" => args.db = it.next().ok_or("--db needs a path")?.into(),
            "--fresh" => args.fresh = true,
            "--reject" => args.reject = true,
            "--wait-for-manager" => args.wait_for_manager = true,
            "--crash-after" => {
                let step = it.next().ok_or("--crash-after needs a step name")?;
                if !steps.contains(&step.as_str()) {
                    return Err(format!("unknown step `{step}`; expected one of: {}", steps.join(", ")));
                }
                args.crash_after = Some(step);
            }
            other => return Err(format!("unknown argument `{other}`; usage: approval [--db PATH] [--fresh] [--reject] [--wait-for-manager] [--crash-after STEP]")),
        }
    }
    Ok(args)
}

/// Who answers the run's `decision` wait.
#[derive(Clone, Copy)]
enum Manager {
    Approves,
    Rejects,
    /// A person, through the dashboard or the command line.
    Elsewhere,
}

/// Follows the run's events: the manager answers its `decision` wait, and with
/// `--crash-after STEP` the process exits abruptly (status 137) once STEP completed.
fn spawn_observer(
    run: RunHandle<Expense>,
    manager: Manager,
    crash_after: Option<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = run.events();
        while let Some(event) = events.next().await {
            match event {
                RunEvent::StepCompleted { step, .. }
                    if crash_after.as_deref() == Some(step.name()) =>
                {
                    println!("*** crash: `{step}` is committed; exiting abruptly (status 137) ***");
                    println!("*** run the same command without --crash-after to resume ***");
                    std::process::exit(137);
                }
                RunEvent::WaitingForSignal {
                    step: ExpenseStep::ManagerApproval,
                    ..
                } if !crash_before_approval(crash_after.as_deref()) => {
                    let decision = match manager {
                        Manager::Rejects => Decision::Reject {
                            by: "maria".into(),
                            reason: "no receipt attached".into(),
                        },
                        Manager::Approves => approve(),
                        Manager::Elsewhere => {
                            println!(
                                "  run {} waits for `decision`: answer it in the dashboard's inbox",
                                run.id()
                            );
                            println!("  (cargo run -p workflow-cli -- --store <this store> serve), or with `workflow runs signal`");
                            continue;
                        }
                    };
                    println!("  [manager] run waits for `decision`; sending {decision:?}");
                    if let Err(e) = run.signal(Expense::signals().decision, decision).await {
                        eprintln!("  [manager] could not send the signal: {e}");
                    }
                }
                _ => {}
            }
        }
    })
}

/// With a crash planned before the approval, the manager stays away: the run would otherwise
/// consume the decision in the instant before the process dies.
fn crash_before_approval(crash_after: Option<&str>) -> bool {
    matches!(crash_after, Some("draft" | "reserve_budget"))
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

    // Steps completed before this process started (restored from the journal).
    let run = engine.handle::<Expense>(RUN_ID);
    let done_before = match &before {
        Some(_) => run.history().await?.path,
        None => Vec::new(),
    };
    let crash_after = args.crash_after.clone().filter(|_| {
        if finished_before {
            println!("(no crash: the run already finished; add --fresh to start over)");
        }
        !finished_before
    });
    // Starting an id that exists resumes it: this engine's worker executes it.
    let run = engine
        .start_with_id(&Expense, RUN_ID, train_ticket())
        .await?;
    let manager = match (args.wait_for_manager, args.reject) {
        (true, _) => Manager::Elsewhere,
        (false, true) => Manager::Rejects,
        (false, false) => Manager::Approves,
    };
    let observer = spawn_observer(run.clone(), manager, crash_after.clone());
    let result = run.wait().await;
    if let Some(step) = &crash_after {
        // The crash is due any moment (the observer follows the journal every 50 ms).
        let _ = tokio::time::timeout(Duration::from_secs(1), observer).await;
        println!("(no crash: `{step}` never completed in this run)");
    } else {
        observer.abort();
    }

    if !finished_before {
        let mut ran_now = run.history().await?.path;
        for step in &done_before {
            if let Some(i) = ran_now.iter().position(|s| s == step) {
                ran_now.remove(i);
            }
        }
        println!("restored from the journal: {done_before:?}");
        println!("ran in this process:       {ran_now:?}");
    }
    match result {
        Ok(message) => println!("result: {message}"),
        Err(error) => {
            println!("result: error: {error}");
            if let Some(report) = error.report() {
                if !report.compensations.is_empty() {
                    println!("compensated: {:?}", report.compensated());
                }
            }
        }
    }
    Ok(())
}
