//! Run identifiers.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Identifies one run of a workflow. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Arc<str>);

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A bijective 64-bit mix (splitmix64's finaliser): distinct counters give distinct,
/// random-looking values.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl RunId {
    /// A fresh, process-unique id: 16 random hex digits and a per-process counter.
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SEED: OnceLock<u64> = OnceLock::new();
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let seed = *SEED.get_or_init(|| RandomState::new().build_hasher().finish());
        let random = splitmix64(seed.wrapping_add(count));
        // Written on the stack by hand (`format!` costs more than the rest of a short run),
        // then one allocation for the shared text.
        let mut text = [0u8; 37];
        let mut len = 0;
        for shift in (0..16).rev() {
            text[len] = HEX[(random >> (shift * 4)) as usize & 0xf];
            len += 1;
        }
        text[len] = b'-';
        len += 1;
        let digits = count.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut rest = count;
        for i in (0..digits).rev() {
            text[len + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        len += digits;
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

#[cfg(test)]
mod tests {
    use super::RunId;

    #[test]
    fn generated_ids_are_sixteen_hex_digits_then_the_counter_and_never_repeat() {
        let ids: Vec<RunId> = (0..1000).map(|_| RunId::generate()).collect();
        for id in &ids {
            let (random, count) = id.as_str().split_once('-').expect("a dash");
            assert_eq!(random.len(), 16, "{id}");
            assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            count.parse::<u64>().expect("a decimal counter");
        }
        let distinct: std::collections::BTreeSet<&str> = ids.iter().map(RunId::as_str).collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
