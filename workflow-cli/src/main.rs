//! `workflow`: operate the runs of a workflow store (an SQLite file or a PostgreSQL URL)
//! without writing Rust: list and inspect runs, read their journals, cancel them, see the
//! workers and the stored definitions. Every command takes `--json` for scripts.
//!
//! ```text
//! workflow --store runs.db runs list --status waiting --since 2h
//! workflow --store runs.db runs purge --finished-before 30d
//! workflow --store postgres://user@host/db runs show expense-42
//! workflow --store runs.db --json runs history expense-42
//! workflow --store runs.db runs graph expense-42      # Mermaid, steps styled by outcome
//! workflow --store runs.db runs watch expense-42      # follow it until it ends
//! workflow --store runs.db runs signal expense-42 approval --payload true
//! workflow --store runs.db runs cancel expense-42
//! workflow --store runs.db runs retry expense-42 --from charge --dry-run
//! workflow --store runs.db workers
//! workflow --store runs.db queues
//! workflow --store runs.db definitions
//! workflow --store runs.db serve                     # the dashboard on http://127.0.0.1:8080/
//! ```

mod args;
mod commands;
mod graph;
mod output;
mod purge;
mod timeline;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
