//! Checksums of stored rows: journal records, and the fixed and final fields of run rows.

use super::{JournalRecord, NewRun, RunRecord, RunStatus, StoreError};
use crate::journal::EncodedEvent;
use crate::journal::JournalEvent;
use crate::run_id::RunId;

/// 64-bit FNV-1a over the parts, with their lengths, so moved bytes change the sum too.
pub fn checksum(parts: &[&[u8]]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash as i64
}

fn opt_u64(value: Option<u64>) -> [u8; 9] {
    let mut bytes = [0; 9];
    if let Some(v) = value {
        bytes[0] = 1;
        bytes[1..].copy_from_slice(&v.to_le_bytes());
    }
    bytes
}

fn opt_bytes(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(bytes) => [&[1], bytes].concat(),
    }
}

/// The checksum of a journal row: the run, the position and every column of the event.
pub(crate) fn record_checksum(run_id: &RunId, seq: u64, row: &EncodedEvent) -> i64 {
    checksum(&[
        run_id.as_str().as_bytes(),
        &seq.to_le_bytes(),
        row.kind.as_bytes(),
        &opt_bytes(row.step.as_deref().map(str::as_bytes)),
        &opt_u64(row.item),
        &row.payload,
    ])
}

impl JournalRecord {
    /// The checksum stored beside the record.
    pub fn checksum(&self, run_id: &RunId) -> i64 {
        record_checksum(run_id, self.seq, &self.event.encode())
    }
}

/// The checksum of the fields of a run row fixed at creation, its input included.
pub(crate) fn run_checksum(run: &NewRun, deadline_ms: Option<u64>) -> i64 {
    checksum(&[
        run.run_id.as_str().as_bytes(),
        run.workflow.as_bytes(),
        &run.version.to_le_bytes(),
        &run.definition_hash.to_le_bytes(),
        run.queue.as_bytes(),
        &opt_u64(deadline_ms),
        &run.input,
    ])
}

/// The checksum of a finished run's result.
pub(crate) fn result_checksum(
    run_id: &RunId,
    status: RunStatus,
    output: Option<&[u8]>,
    error: Option<&str>,
) -> i64 {
    checksum(&[
        run_id.as_str().as_bytes(),
        status.as_str().as_bytes(),
        &opt_bytes(output),
        &opt_bytes(error.map(str::as_bytes)),
    ])
}

/// Checks a run read from a store against its stored checksums: the fields fixed at creation
/// (`checksum`, with the stored deadline in ms) and, once finished, its result.
pub(crate) fn verify_run(
    record: &RunRecord,
    deadline_ms: Option<u64>,
    checksum: i64,
    stored_result: Option<i64>,
) -> Result<(), StoreError> {
    let run = &record.summary;
    let corrupt = |detail: &str| StoreError::Corrupt {
        run_id: run.run_id.clone(),
        seq: None,
        detail: detail.to_owned(),
    };
    let fixed = NewRun {
        run_id: run.run_id.clone(),
        workflow: run.workflow.clone(),
        version: run.version,
        definition_hash: run.definition_hash,
        queue: run.queue.clone(),
        deadline_at: None,
        input: record.input.clone(),
        trace_context: None,
    };
    if checksum != run_checksum(&fixed, deadline_ms) {
        return Err(corrupt(
            "checksum mismatch: the run's input or identity was altered",
        ));
    }
    if run.status.is_finished() {
        let expected = result_checksum(
            &run.run_id,
            run.status,
            record.output.as_deref(),
            record.error.as_deref(),
        );
        if stored_result != Some(expected) {
            return Err(corrupt("checksum mismatch: the run's result was altered"));
        }
    }
    Ok(())
}

/// A journal row read from a store, checked against its stored checksum and decoded.
pub(crate) fn verify_record(
    run_id: &RunId,
    seq: u64,
    row: EncodedEvent,
    stored: i64,
) -> Result<JournalRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: Some(seq),
        detail,
    };
    if stored != record_checksum(run_id, seq, &row) {
        return Err(corrupt(
            "checksum mismatch: the record was altered or truncated".into(),
        ));
    }
    let event = JournalEvent::decode(row).map_err(|e| corrupt(e.0))?;
    Ok(JournalRecord { seq, event })
}
