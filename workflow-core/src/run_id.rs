//! Run identifiers.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Identifies one run of a workflow. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Arc<str>);

impl RunId {
    /// A fresh, process-unique id: 16 random hex digits and a per-process counter.
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(count);
        // Written on the stack, then one allocation for the shared text.
        let mut text = [0u8; 40];
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        let _ = std::io::Write::write_fmt(
            &mut cursor,
            format_args!("{:016x}-{count}", hasher.finish()),
        );
        let len = cursor.position() as usize;
        RunId(Arc::from(
            std::str::from_utf8(&text[..len]).unwrap_or_default(),
        ))
    }

    /// The first character of every child run's id, and of no caller-chosen id: child runs
    /// have a namespace of their own (see [`crate::StepContext::run_child`]).
    pub const CHILD_PREFIX: char = '~';

    /// The id of the child run started by attempt `attempt` of `step` (and `item`) of run
    /// `parent`: `~{parent}/{step}[/{item}]`, then `@{attempt}` from the second attempt on, so
    /// a retry starts a new child while a crash resumes the same one.
    pub(crate) fn child(parent: &RunId, step: &str, item: Option<usize>, attempt: u32) -> Self {
        let prefix = Self::CHILD_PREFIX;
        let mut id = match item {
            Some(i) => format!("{prefix}{parent}/{step}/{i}"),
            None => format!("{prefix}{parent}/{step}"),
        };
        if attempt > 1 {
            id.push_str(&format!("@{attempt}"));
        }
        id.into()
    }

    /// True for ids in the child runs' namespace.
    pub fn is_child(&self) -> bool {
        self.0.starts_with(Self::CHILD_PREFIX)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        RunId(id.into())
    }
}

impl From<String> for RunId {
    fn from(id: String) -> Self {
        RunId(id.into())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}
