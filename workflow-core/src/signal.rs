//! [`Signal`]: what a step waiting for a person or an outside event receives.

/// The parameter type of a step that waits for a signal: `approval: Signal<Approval>` makes
/// the step wait until `run.signal(W::signals().approval, payload)` delivers one (the signal's
/// name is the parameter's name), or until the step's `deadline` passes.
///
/// The wait is a graph boundary, persisted by durable engines: a restart resumes the wait, a
/// signal sent before the wait began is kept, and each signal is consumed exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal<T> {
    /// The signal arrived with this payload.
    Received(T),
    /// The step's `deadline` passed first.
    TimedOut,
}

impl<T> Signal<T> {
    /// The payload, if the signal arrived.
    pub fn received(self) -> Option<T> {
        match self {
            Signal::Received(payload) => Some(payload),
            Signal::TimedOut => None,
        }
    }

    /// True when the deadline passed first.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Signal::TimedOut)
    }
}
