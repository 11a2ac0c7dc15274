//! The command line, as clap reads it.

use std::time::SystemTime;

use clap::{Parser, Subcommand};
use workflow_core::store::RunStatus;

/// Operate the runs of a workflow store.
#[derive(Parser, Debug)]
#[command(name = "workflow", version, about)]
pub struct Cli {
    /// The store: an SQLite file path, or a `postgres://` URL.
    #[arg(long, env = "WORKFLOW_STORE")]
    pub store: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs: list, show, history, cancel.
    #[command(subcommand)]
    Runs(Runs),
    /// The workers registered in the store.
    Workers,
    /// The queues with limits or ready runs: ready runs, concurrency, rate, burst.
    Queues,
    /// The workflow definitions the store keeps (name, version, hash, steps).
    Definitions,
    /// Serves the web dashboard: runs, a run's graph and timeline, the approval inbox,
    /// workers, queues, definitions and the audit log.
    Serve {
        /// Where to listen; beyond localhost, `--token` is required.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The token write actions need (`/login?token=..` sets it in the browser).
        #[arg(long, env = "WORKFLOW_DASHBOARD_TOKEN")]
        token: Option<String>,
    },
}

/// Commands about runs.
#[derive(Subcommand, Debug)]
pub enum Runs {
    /// A page of runs, oldest first.
    List {
        /// Only runs with this status.
        #[arg(long, value_parser = parse_status)]
        status: Option<RunStatus>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs on this queue.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Runs after this cursor (printed as `next` by the previous page).
        #[arg(long)]
        after: Option<u64>,
        /// Only runs created at or after this time: an RFC 3339 instant
        /// (`2026-11-28T09:00:00Z`) or an age (`2h`, `7d`: that long ago).
        #[arg(long, value_parser = workflow_core::dashboard::parse_time)]
        since: Option<SystemTime>,
        /// Only runs created before this time (an instant or an age, as `--since`).
        #[arg(long, value_parser = workflow_core::dashboard::parse_time)]
        until: Option<SystemTime>,
    },
    /// One run: status, owner, what it waits for, its output or error.
    Show {
        /// The run's id.
        id: String,
    },
    /// The run's journal: every recorded fact, in order.
    History {
        /// The run's id.
        id: String,
    },
    /// Follows the run: prints each new journal record as it is committed, until the run
    /// finishes (one JSON object a line with `--json`).
    Watch {
        /// The run's id.
        id: String,
    },
    /// The run's graph as a Mermaid flowchart, each step styled (and labelled) by what the
    /// journal says of it: completed, waiting, failed, compensated, pending.
    Graph {
        /// The run's id.
        id: String,
        /// `mermaid`, `dot` (Graphviz) or `svg`.
        #[arg(long, default_value = "mermaid", value_parser = ["mermaid", "dot", "svg"])]
        format: String,
    },
    /// Sends a signal to the run: the name must be one its steps wait for, and the payload
    /// (JSON) of the signal's type where the store can tell; refused before anything is
    /// stored otherwise.
    Signal {
        /// The run's id.
        id: String,
        /// The signal's name.
        name: String,
        /// The payload, as JSON.
        #[arg(long, default_value = "null")]
        payload: String,
    },
    /// Cancels the run wherever it executes (its completed saga steps are compensated).
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Deletes the runs that finished before a time, with their journals and signals, in
    /// batches (a progress bar on a terminal).
    Purge {
        /// An RFC 3339 instant, or an age (`30d`: finished more than 30 days ago).
        #[arg(long, value_parser = workflow_core::dashboard::parse_time)]
        finished_before: SystemTime,
        /// Runs deleted per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
    /// Retries a finished run from a step: that step, everything downstream of it and the
    /// saga steps the run compensated run again; the other completed steps keep their
    /// outputs. A worker that has the workflow's definition takes the run up.
    Retry {
        /// The run's id.
        id: String,
        /// The step to run again.
        #[arg(long)]
        from: String,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!(
                "unknown status `{text}`; expected one of: {}",
                names.join(", ")
            )
        })
}
