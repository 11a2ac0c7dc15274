//! The commands: each reads or writes the store and hands rows to [`crate::output`].

use std::sync::Arc;

use serde_json::json;
use workflow_core::store::{
    effective_journal, PostgresStore, RunFilter, RunSummary, SqliteStore, Store, StoreError,
};
use workflow_core::{JournalEvent, RunId};

use crate::args::{Cli, Command, Runs};
use crate::output::{print, Table};

/// Runs the command `cli` names.
pub async fn run(cli: &Cli) -> Result<(), StoreError> {
    let store = open(&cli.store).await?;
    let table = match &cli.command {
        Command::Runs(Runs::List {
            status,
            workflow,
            queue,
            limit,
            after,
            since,
            until,
        }) => {
            let filter = RunFilter {
                status: *status,
                workflow: workflow.clone(),
                queue: queue.clone(),
                after: *after,
                limit: *limit,
                created_since: *since,
                created_before: *until,
                ..RunFilter::default()
            };
            let page = store.list(&filter).await?;
            let mut table = Table::new(&[
                "id",
                "workflow",
                "status",
                "created",
                "owner",
                "waiting for",
                "queue",
            ]);
            for run in &page.runs {
                table.row(summary_row(run), summary_json(run));
            }
            for error in &page.unreadable {
                table.note(format!("unreadable: {error}"));
            }
            if let Some(next) = page.next {
                table.note(format!("next page: --after {next}"));
            }
            table
        }
        Command::Runs(Runs::Show { id }) => {
            let run_id = RunId::from(id.as_str());
            let record = store
                .load_run(&run_id)
                .await?
                .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))?;
            let summary = &record.summary;
            let mut table = Table::new(&["field", "value"]);
            let mut facts = vec![
                ("id", summary.run_id.to_string()),
                (
                    "workflow",
                    format!("{} (version {})", summary.workflow, summary.version),
                ),
                ("status", summary.status.as_str().to_owned()),
                ("queue", summary.queue.clone()),
                ("claims", summary.claims.to_string()),
            ];
            if let Some(owner) = &summary.owner {
                facts.push(("owner", format!("{owner} (epoch {})", summary.epoch)));
            }
            if let Some(waiting) = &summary.waiting_for {
                facts.push(("waiting for", waiting.clone()));
            }
            if summary.cancel_requested {
                facts.push(("cancel", "requested".to_owned()));
            }
            if let Some(output) = &record.output {
                facts.push(("output", String::from_utf8_lossy(output).into_owned()));
            }
            if let Some(error) = &record.error {
                facts.push(("error", error.clone()));
            }
            facts.push(("created", time_text(summary.created_at)));
            if summary.finished_at.is_some() {
                facts.push(("finished", time_text(summary.finished_at)));
            }
            let definition = store
                .definition(&summary.workflow, summary.definition_hash)
                .await?;
            let journal = effective_journal(store.journal(&run_id).await?);
            let times = store.journal_times(&run_id).await?;
            let timeline =
                crate::timeline::timeline(definition.as_ref(), &record, &journal, &times);
            let value = json!({
                "run": summary_json(summary),
                "output": record.output.as_deref().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()),
                "error": record.error,
                "timeline": timeline.json_rows(),
            });
            for (field, text) in facts {
                table.row(vec![field.to_owned(), text], json!(null));
            }
            if !cli.json {
                print(&table, false);
                print(&timeline, false);
                return Ok(());
            }
            table.with_json(value)
        }
        Command::Runs(Runs::History { id }) => {
            let run_id = RunId::from(id.as_str());
            let journal = store.journal(&run_id).await?;
            let mut table = Table::new(&["seq", "event", "step", "detail"]);
            for record in &journal {
                let (event, step, detail) = describe(&record.event);
                let value =
                    json!({"seq": record.seq, "event": event, "step": step, "detail": detail});
                table.row(
                    vec![record.seq.to_string(), event.to_owned(), step, detail],
                    value,
                );
            }
            table
        }
        Command::Runs(Runs::Watch { id }) => return watch(store.as_ref(), id, cli.json).await,
        Command::Runs(Runs::Graph { id, format }) => {
            let run_id = RunId::from(id.as_str());
            let record = store
                .load_run(&run_id)
                .await?
                .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))?;
            let definition =
                workflow_core::store::definition_of(store.as_ref(), &record.summary).await?;
            let journal = effective_journal(store.journal(&run_id).await?);
            let chart = match format.as_str() {
                "dot" => crate::graph::dot(&definition, &record, &journal),
                "svg" => {
                    let graph = workflow_core::dashboard::RunGraph::load(
                        store.as_ref(),
                        record,
                        definition,
                    )
                    .await?;
                    workflow_core::dashboard::graph_svg(&graph)
                }
                _ => crate::graph::mermaid(&definition, &record, &journal),
            };
            if cli.json {
                println!("{}", json!({ "id": id, format.as_str(): chart }));
            } else {
                print!("{chart}");
            }
            return Ok(());
        }
        Command::Runs(Runs::Signal { id, name, payload }) => {
            workflow_core::dashboard::send_signal_checked(store.as_ref(), id, name, payload)
                .await?;
            let mut table = Table::new(&["id", "signal", "sent"]);
            table.row(
                vec![id.clone(), name.clone(), "yes".into()],
                json!({"id": id, "signal": name, "sent": true}),
            );
            table
        }
        Command::Runs(Runs::Cancel { id }) => {
            let run_id = RunId::from(id.as_str());
            let status = store.request_cancel(&run_id).await?;
            let mut table = Table::new(&["id", "status when the cancel was stored"]);
            table.row(
                vec![id.clone(), status.as_str().to_owned()],
                json!({"id": id, "status": status.as_str()}),
            );
            table
        }
        Command::Runs(Runs::Purge {
            finished_before,
            batch,
        }) => return crate::purge::purge(store.as_ref(), *finished_before, *batch, cli.json).await,
        Command::Runs(Runs::Retry { id, from, dry_run }) => {
            let run_id = RunId::from(id.as_str());
            let plan = if *dry_run {
                workflow_core::plan_retry(store.as_ref(), &run_id, from).await?
            } else {
                workflow_core::retry_from(store.as_ref(), &run_id, from).await?
            };
            retry_table(&plan, *dry_run)
        }
        Command::Serve { addr, token } => {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(StoreError::Database(format!(
                    "the dashboard binds to {addr}, beyond localhost: give it a --token for its write actions"
                )));
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| StoreError::Database(format!("cannot listen on {addr}: {e}")))?;
            eprintln!(
                "dashboard: http://{}/",
                listener.local_addr().map_or(*addr, |a| a)
            );
            let options = workflow_core::dashboard::DashboardOptions {
                write_token: token.clone(),
            };
            return workflow_core::dashboard::serve(listener, store, options)
                .await
                .map_err(|e| StoreError::Database(e.to_string()));
        }
        Command::Workers => {
            let mut table = Table::new(&["worker"]);
            for worker in store.list_workers().await? {
                table.row(
                    vec![worker.to_string()],
                    json!({"worker": worker.to_string()}),
                );
            }
            table
        }
        Command::Queues => {
            let mut table =
                Table::new(&["queue", "ready", "concurrency", "rate per second", "burst"]);
            for state in workflow_core::store::queue_states(store.as_ref()).await? {
                let limits = state.limits.as_ref();
                let concurrency = limits.and_then(|l| l.concurrency);
                let rate = limits.and_then(|l| l.rate_per_sec);
                let burst = limits.map(|l| l.burst);
                let value = json!({
                    "queue": state.queue, "ready": state.ready, "concurrency": concurrency,
                    "rate_per_sec": rate, "burst": burst,
                });
                let cell = |value: Option<String>| value.unwrap_or_else(|| "-".into());
                table.row(
                    vec![
                        state.queue.clone(),
                        state.ready.to_string(),
                        cell(concurrency.map(|c| c.to_string())),
                        cell(rate.map(|r| r.to_string())),
                        cell(burst.map(|b| b.to_string())),
                    ],
                    value,
                );
            }
            table
        }
        Command::Definitions => {
            let mut table = Table::new(&["workflow", "version", "hash", "steps"]);
            for def in store.list_definitions().await? {
                let steps: Vec<String> = def.steps().into_iter().map(|s| s.name).collect();
                let schemas: serde_json::Map<String, serde_json::Value> = def
                    .signal_schemas
                    .iter()
                    .filter_map(|(name, text)| {
                        Some((name.clone(), serde_json::from_str(text).ok()?))
                    })
                    .collect();
                let value = json!({
                    "workflow": def.workflow, "version": def.version,
                    "hash": format!("{:016x}", def.hash), "steps": steps,
                    "canonical": def.canonical, "signal_schemas": schemas,
                });
                table.row(
                    vec![
                        def.workflow.clone(),
                        def.version.to_string(),
                        format!("{:016x}", def.hash),
                        steps.join(", "),
                    ],
                    value,
                );
            }
            table
        }
    };
    print(&table, cli.json);
    Ok(())
}

/// A retry's plan: each step with what happens to it.
fn retry_table(plan: &workflow_core::RetryPlan, dry_run: bool) -> Table {
    let mut table = Table::new(&["step", "plan"]);
    for step in &plan.kept {
        table.row(vec![step.clone(), "keep its output".into()], json!(null));
    }
    for step in &plan.rerun {
        let what = if plan.undone.contains(step) {
            "run again (it was compensated)"
        } else {
            "run again"
        };
        table.row(vec![step.clone(), what.into()], json!(null));
    }
    table.note(if dry_run {
        format!(
            "dry run: run {} ({}) would be retried from `{}`; nothing changed",
            plan.run_id,
            plan.status.as_str(),
            plan.from
        )
    } else {
        format!(
            "run {} ({}) retried from `{}`: ready for a worker of `{}`",
            plan.run_id,
            plan.status.as_str(),
            plan.from,
            plan.workflow
        )
    });
    table.with_json(json!({
        "id": plan.run_id.as_str(),
        "workflow": plan.workflow,
        "status": plan.status.as_str(),
        "from": plan.from,
        "rerun": plan.rerun,
        "undone": plan.undone,
        "kept": plan.kept,
        "dry_run": dry_run,
    }))
}

/// How often `runs watch` re-reads the run.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// `runs watch`: prints the run's journal records as they are committed, then its end.
async fn watch(store: &dyn Store, id: &str, json_lines: bool) -> Result<(), StoreError> {
    let run_id = RunId::from(id);
    let mut next = 0usize;
    loop {
        let record = store
            .load_run(&run_id)
            .await?
            .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))?;
        let journal = store.journal(&run_id).await?;
        for entry in journal.iter().skip(next) {
            let (event, step, detail) = describe(&entry.event);
            if json_lines {
                println!(
                    "{}",
                    json!({"seq": entry.seq, "event": event, "step": step, "detail": detail})
                );
            } else {
                println!("{:>4}  {event:<16} {step:<20} {detail}", entry.seq);
            }
        }
        next = journal.len();
        let status = record.summary.status;
        if status.is_finished() {
            if json_lines {
                println!(
                    "{}",
                    json!({"status": status.as_str(), "error": record.error})
                );
            } else {
                println!("run {id} {}", status.as_str());
            }
            return Ok(());
        }
        tokio::time::sleep(WATCH_POLL).await;
    }
}

/// Opens the store at `location`: a `postgres://` URL, or an SQLite file, which must exist
/// (the command line never creates a store).
async fn open(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::connect(location).await?));
    }
    if !std::path::Path::new(location).exists() {
        return Err(StoreError::NotAStore {
            location: location.to_owned(),
            detail: "no such file".into(),
        });
    }
    Ok(Arc::new(SqliteStore::open(location).await?))
}

fn summary_row(run: &RunSummary) -> Vec<String> {
    vec![
        run.run_id.to_string(),
        run.workflow.clone(),
        run.status.as_str().to_owned(),
        time_text(run.created_at),
        run.owner
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        run.waiting_for.clone().unwrap_or_default(),
        run.queue.clone(),
    ]
}

fn summary_json(run: &RunSummary) -> serde_json::Value {
    json!({
        "id": run.run_id.as_str(),
        "workflow": run.workflow,
        "version": run.version,
        "status": run.status.as_str(),
        "owner": run.owner.as_ref().map(ToString::to_string),
        "waiting_for": run.waiting_for,
        "queue": run.queue,
        "claims": run.claims,
        "cancel_requested": run.cancel_requested,
        "created_at": run.created_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "finished_at": run.finished_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
    })
}

/// A stored time as RFC 3339 (empty when the store has none).
pub fn time_text(at: Option<std::time::SystemTime>) -> String {
    at.map_or_else(String::new, |t| {
        humantime::format_rfc3339_seconds(t).to_string()
    })
}

/// A journal event as (name, step, detail).
fn describe(event: &JournalEvent) -> (&'static str, String, String) {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match event {
        JournalEvent::StepCompleted { step, output } => ("completed", step.clone(), text(output)),
        JournalEvent::ItemCompleted { step, item, output } => (
            "item completed",
            step.clone(),
            format!("item {item}: {}", text(output)),
        ),
        JournalEvent::WaitStarted { step, .. } => ("waiting", step.clone(), String::new()),
        JournalEvent::SignalConsumed { step, payload } => {
            ("signal received", step.clone(), text(payload))
        }
        JournalEvent::SignalTimedOut { step } => ("signal timed out", step.clone(), String::new()),
        JournalEvent::RetryScheduled { step, attempt, .. } => (
            "retry scheduled",
            step.clone(),
            format!("attempt {attempt}"),
        ),
        JournalEvent::Stopped { cause } => ("stopped", String::new(), cause.clone()),
        JournalEvent::Compensated { step, error, .. } => (
            "compensated",
            step.clone(),
            error
                .clone()
                .map_or_else(|| "ok".into(), |e| format!("failed: {e}")),
        ),
        JournalEvent::Rewound { steps } => (
            "retried",
            String::new(),
            format!("runs again: {}", steps.join(", ")),
        ),
    }
}
