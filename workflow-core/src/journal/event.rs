//! [`JournalEvent`]: every fact a durable run journals, with its one encoding.
//!
//! A journal record is stored as four columns (`kind`, `step`, `item`, `payload`) so that
//! tools can read it without the workflow's code; this module is the only place that knows
//! how each event maps onto them. Steps are named by their stable name, never by index.

use std::time::{Duration, SystemTime};

/// One journaled fact of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEvent {
    /// A step completed; `output` is its encoded (JSON) output.
    StepCompleted {
        /// The step's stable name.
        step: String,
        /// The encoded output.
        output: Vec<u8>,
    },
    /// One item of a `for_each` step completed.
    ItemCompleted {
        /// The step's stable name.
        step: String,
        /// The item's index.
        item: u64,
        /// The encoded output of the item.
        output: Vec<u8>,
    },
    /// A signal step began waiting (its deadline counts from `at`).
    WaitStarted {
        /// The step's stable name.
        step: String,
        /// When the wait began (millisecond precision).
        at: SystemTime,
    },
    /// A signal step consumed its signal.
    SignalConsumed {
        /// The step's stable name.
        step: String,
        /// The encoded signal payload.
        payload: Vec<u8>,
    },
    /// A signal step's deadline passed before its signal arrived.
    SignalTimedOut {
        /// The step's stable name.
        step: String,
    },
    /// A failed attempt's retry was put off until `due` (a backoff long enough to park the
    /// run rather than wait in memory).
    RetryScheduled {
        /// The step's stable name.
        step: String,
        /// The `for_each` item, for a mapped step.
        item: Option<u64>,
        /// The number of the attempt to make at `due`.
        attempt: u32,
        /// When the retry is due (millisecond precision).
        due: SystemTime,
    },
    /// The run stopped early with this cause; compensation began.
    Stopped {
        /// Why the run stopped (the error's text).
        cause: String,
    },
    /// The compensation of completion number `completion` of a saga step ended.
    Compensated {
        /// The saga step's stable name.
        step: String,
        /// Which completion of the step (from 0; loops complete a step more than once).
        completion: u64,
        /// The last error, when the compensation failed for good.
        error: Option<String>,
    },
    /// An operator retried the finished run from a step (`workflow runs retry ID --from
    /// STEP`): what the journal says before this record of these steps (their outputs, waits,
    /// signals, retries and compensations) and of the run's stop is forgotten, so they run
    /// again.
    Rewound {
        /// The steps to run again, by stable name.
        steps: Vec<String>,
    },
}

/// A [`JournalEvent`] as stored: the columns of one journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// What kind of fact (`step`, `item`, `wait`, `signal`, `timeout`, `retry`, `stopped`,
    /// `compensated`, `rewound`).
    pub kind: String,
    /// The step's stable name (none for `stopped`).
    pub step: Option<String>,
    /// The `for_each` item, or the saga completion number.
    pub item: Option<u64>,
    /// The kind's payload.
    pub payload: Vec<u8>,
}

/// A stored row that is not a valid [`JournalEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventDecodeError(pub String);

/// Milliseconds since the Unix epoch.
fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// A time stored as 8 bytes of milliseconds since the Unix epoch.
fn time(bytes: &[u8]) -> Option<SystemTime> {
    let millis: [u8; 8] = bytes.try_into().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(u64::from_le_bytes(millis)))
}

const COMPENSATION_OK: u8 = 0;
const COMPENSATION_FAILED: u8 = 1;

impl JournalEvent {
    /// The step the event is about (none for [`JournalEvent::Stopped`] and
    /// [`JournalEvent::Rewound`]).
    pub fn step(&self) -> Option<&str> {
        match self {
            JournalEvent::StepCompleted { step, .. }
            | JournalEvent::ItemCompleted { step, .. }
            | JournalEvent::WaitStarted { step, .. }
            | JournalEvent::SignalConsumed { step, .. }
            | JournalEvent::SignalTimedOut { step }
            | JournalEvent::RetryScheduled { step, .. }
            | JournalEvent::Compensated { step, .. } => Some(step),
            JournalEvent::Stopped { .. } | JournalEvent::Rewound { .. } => None,
        }
    }

    /// The stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            JournalEvent::StepCompleted { .. } => "step",
            JournalEvent::ItemCompleted { .. } => "item",
            JournalEvent::WaitStarted { .. } => "wait",
            JournalEvent::SignalConsumed { .. } => "signal",
            JournalEvent::SignalTimedOut { .. } => "timeout",
            JournalEvent::RetryScheduled { .. } => "retry",
            JournalEvent::Stopped { .. } => "stopped",
            JournalEvent::Compensated { .. } => "compensated",
            JournalEvent::Rewound { .. } => "rewound",
        }
    }

    /// The event's columns.
    pub fn encode(&self) -> EncodedEvent {
        let step = self.step().map(str::to_owned);
        let (item, payload) = match self {
            JournalEvent::StepCompleted { output, .. } => (None, output.clone()),
            JournalEvent::ItemCompleted { item, output, .. } => (Some(*item), output.clone()),
            JournalEvent::WaitStarted { at, .. } => (None, millis(*at).to_le_bytes().to_vec()),
            JournalEvent::RetryScheduled {
                item, attempt, due, ..
            } => {
                let payload = [&attempt.to_le_bytes()[..], &millis(*due).to_le_bytes()].concat();
                (*item, payload)
            }
            JournalEvent::SignalConsumed { payload, .. } => (None, payload.clone()),
            JournalEvent::SignalTimedOut { .. } => (None, Vec::new()),
            JournalEvent::Stopped { cause } => (None, cause.as_bytes().to_vec()),
            JournalEvent::Compensated {
                completion, error, ..
            } => {
                let payload = match error {
                    None => vec![COMPENSATION_OK],
                    Some(error) => [&[COMPENSATION_FAILED], error.as_bytes()].concat(),
                };
                (Some(*completion), payload)
            }
            JournalEvent::Rewound { steps } => (None, steps.join("\n").into_bytes()),
        };
        EncodedEvent {
            kind: self.kind().to_owned(),
            step,
            item,
            payload,
        }
    }

    /// Decodes stored columns; any row that is not exactly what [`JournalEvent::encode`]
    /// writes is an error.
    pub fn decode(row: EncodedEvent) -> Result<JournalEvent, EventDecodeError> {
        let EncodedEvent {
            kind,
            step,
            item,
            payload,
        } = row;
        let bad = |what: &str| EventDecodeError(format!("`{kind}` record: {what}"));
        let step_name = || step.clone().ok_or_else(|| bad("no step name"));
        let no_item = || match item {
            None => Ok(()),
            Some(_) => Err(bad("unexpected item number")),
        };
        let utf8 =
            |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| bad("text is not UTF-8"));
        let event = match kind.as_str() {
            "step" => {
                no_item()?;
                JournalEvent::StepCompleted {
                    step: step_name()?,
                    output: payload,
                }
            }
            "item" => JournalEvent::ItemCompleted {
                step: step_name()?,
                item: item.ok_or_else(|| bad("no item number"))?,
                output: payload,
            },
            "wait" => {
                no_item()?;
                let at = time(&payload).ok_or_else(|| bad("bad start time"))?;
                JournalEvent::WaitStarted {
                    step: step_name()?,
                    at,
                }
            }
            "retry" => {
                let (attempt, due) = payload
                    .split_at_checked(4)
                    .ok_or_else(|| bad("too short"))?;
                let attempt = u32::from_le_bytes(attempt.try_into().map_err(|_| bad("attempt"))?);
                JournalEvent::RetryScheduled {
                    step: step_name()?,
                    item,
                    attempt,
                    due: time(due).ok_or_else(|| bad("bad due time"))?,
                }
            }
            "signal" => {
                no_item()?;
                JournalEvent::SignalConsumed {
                    step: step_name()?,
                    payload,
                }
            }
            "timeout" => {
                no_item()?;
                if !payload.is_empty() {
                    return Err(bad("unexpected payload"));
                }
                JournalEvent::SignalTimedOut { step: step_name()? }
            }
            "stopped" => {
                no_item()?;
                if step.is_some() {
                    return Err(bad("unexpected step name"));
                }
                JournalEvent::Stopped {
                    cause: utf8(&payload)?,
                }
            }
            "compensated" => {
                let completion = item.ok_or_else(|| bad("no completion number"))?;
                let error = match payload.split_first() {
                    Some((&COMPENSATION_OK, [])) => None,
                    Some((&COMPENSATION_FAILED, text)) => Some(utf8(text)?),
                    _ => return Err(bad("bad compensation outcome")),
                };
                JournalEvent::Compensated {
                    step: step_name()?,
                    completion,
                    error,
                }
            }
            "rewound" => {
                no_item()?;
                if step.is_some() {
                    return Err(bad("unexpected step name"));
                }
                let steps = utf8(&payload)?;
                if steps.is_empty() {
                    return Err(bad("no steps"));
                }
                JournalEvent::Rewound {
                    steps: steps.split('\n').map(str::to_owned).collect(),
                }
            }
            _ => return Err(EventDecodeError(format!("unknown record kind `{kind}`"))),
        };
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<JournalEvent> {
        let step = || "charge".to_owned();
        vec![
            JournalEvent::StepCompleted {
                step: step(),
                output: b"{\"cents\":12}".to_vec(),
            },
            JournalEvent::StepCompleted {
                step: step(),
                output: Vec::new(),
            },
            JournalEvent::ItemCompleted {
                step: step(),
                item: 7,
                output: b"3".to_vec(),
            },
            JournalEvent::WaitStarted {
                step: step(),
                at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_123),
            },
            JournalEvent::SignalConsumed {
                step: step(),
                payload: b"\"Approve\"".to_vec(),
            },
            JournalEvent::SignalTimedOut { step: step() },
            JournalEvent::RetryScheduled {
                step: step(),
                item: None,
                attempt: 3,
                due: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_060_000),
            },
            JournalEvent::RetryScheduled {
                step: step(),
                item: Some(4),
                attempt: 2,
                due: SystemTime::UNIX_EPOCH,
            },
            JournalEvent::Stopped {
                cause: "step `ship` failed: no carrier".to_owned(),
            },
            JournalEvent::Compensated {
                step: step(),
                completion: 2,
                error: None,
            },
            JournalEvent::Compensated {
                step: step(),
                completion: 0,
                error: Some("refund refused".to_owned()),
            },
            JournalEvent::Compensated {
                step: step(),
                completion: 0,
                error: Some(String::new()),
            },
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for event in every_variant() {
            let decoded = JournalEvent::decode(event.encode());
            assert_eq!(decoded.as_ref(), Ok(&event), "{:?}", event.encode());
        }
    }

    #[test]
    fn every_kind_is_covered() {
        let mut kinds: Vec<_> = every_variant().iter().map(JournalEvent::kind).collect();
        kinds.dedup();
        assert_eq!(
            kinds,
            [
                "step",
                "item",
                "wait",
                "signal",
                "timeout",
                "retry",
                "stopped",
                "compensated"
            ]
        );
    }

    #[test]
    fn malformed_rows_are_errors() {
        let row =
            |kind: &str, step: Option<&str>, item: Option<u64>, payload: &[u8]| EncodedEvent {
                kind: kind.to_owned(),
                step: step.map(str::to_owned),
                item,
                payload: payload.to_vec(),
            };
        for bad in [
            row("output", Some("a"), None, b""),
            row("step", None, None, b"1"),
            row("step", Some("a"), Some(1), b"1"),
            row("item", Some("a"), None, b"1"),
            row("wait", Some("a"), None, b"1234567"),
            row("retry", Some("a"), None, b"123"),
            row("retry", None, None, &[0; 12]),
            row("timeout", Some("a"), None, b"x"),
            row("stopped", Some("a"), None, b"x"),
            row("stopped", None, None, &[0xff, 0xfe]),
            row("compensated", Some("a"), None, &[0]),
            row("compensated", Some("a"), Some(0), &[]),
            row("compensated", Some("a"), Some(0), &[0, 1]),
            row("compensated", Some("a"), Some(0), &[9]),
        ] {
            assert!(JournalEvent::decode(bad.clone()).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_row() -> impl Strategy<Value = EncodedEvent> {
        let kind = prop_oneof![
            Just("step".to_owned()),
            Just("item".to_owned()),
            Just("wait".to_owned()),
            Just("signal".to_owned()),
            Just("timeout".to_owned()),
            Just("retry".to_owned()),
            Just("stopped".to_owned()),
            Just("compensated".to_owned()),
            ".{0,12}",
        ];
        (
            kind,
            proptest::option::of(".{0,16}"),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(kind, step, item, payload)| EncodedEvent {
                kind,
                step,
                item,
                payload,
            })
    }

    proptest! {
        /// Any stored row decodes to an error or to an event that encodes back to that row.
        #[test]
        fn any_row_is_an_error_or_round_trips(row in any_row()) {
            if let Ok(event) = JournalEvent::decode(row.clone()) {
                prop_assert_eq!(event.encode(), row);
            }
        }

        /// Any event round-trips.
        #[test]
        fn any_event_round_trips(
            step in ".{0,16}",
            item in any::<u64>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            text in ".{0,32}",
            millis in 0u64..(1 << 45),
            error in proptest::option::of(".{0,32}"),
        ) {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
            for event in [
                JournalEvent::StepCompleted { step: step.clone(), output: bytes.clone() },
                JournalEvent::ItemCompleted { step: step.clone(), item, output: bytes.clone() },
                JournalEvent::WaitStarted { step: step.clone(), at },
                JournalEvent::SignalConsumed { step: step.clone(), payload: bytes.clone() },
                JournalEvent::SignalTimedOut { step: step.clone() },
                JournalEvent::RetryScheduled { step: step.clone(), item: Some(item), attempt: item as u32, due: at },
                JournalEvent::Stopped { cause: text.clone() },
                JournalEvent::Compensated { step: step.clone(), completion: item, error: error.clone() },
            ] {
                prop_assert_eq!(JournalEvent::decode(event.encode()), Ok(event));
            }
        }
    }
}
