//! `runs purge`: deletes the runs that finished before a time, batch by batch, with a progress
//! bar on a terminal (none when stderr is piped or with `--json`).

use std::io::IsTerminal;
use std::time::SystemTime;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use workflow_core::store::{Store, StoreError};

/// Deletes every run that finished before `before`, `batch` per transaction; prints how many.
pub async fn purge(
    store: &dyn Store,
    before: SystemTime,
    batch: u32,
    json_output: bool,
) -> Result<(), StoreError> {
    let bar = (!json_output && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} purged {pos} runs ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut purged = 0u64;
    loop {
        let deleted = store.purge(before, batch.max(1)).await?;
        purged += deleted;
        if let Some(bar) = &bar {
            bar.inc(deleted);
        }
        if deleted < u64::from(batch.max(1)) {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let before_text = humantime::format_rfc3339_seconds(before).to_string();
    if json_output {
        println!(
            "{}",
            json!({ "purged": purged, "finished_before": before_text })
        );
    } else {
        println!("purged {purged} runs that finished before {before_text}");
    }
    Ok(())
}
