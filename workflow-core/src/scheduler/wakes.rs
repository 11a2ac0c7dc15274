//! Wakers that note which of a run's waits woke before they wake the run: the run then polls
//! only those, not every wait at every event. The held units of in-flight work use one bit
//! per slot; the run's guard (fence, cancellation, deadline) uses one bit for its waits.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use futures::task::AtomicWaker;

/// Which waits woke since the run last looked (one bit each), and the run's waker to pass
/// wakes on to.
#[derive(Default)]
pub(super) struct Wakes {
    woken: AtomicU8,
    run: AtomicWaker,
}

impl Wakes {
    /// A waker that marks `bit` woken, then wakes the run.
    pub fn waker(self: &Arc<Self>, bit: u8) -> Waker {
        Waker::from(Arc::new(BitWaker {
            wakes: self.clone(),
            bit,
        }))
    }

    /// The run's current waker, which the marks wake.
    pub fn register(&self, run: &Waker) {
        self.run.register(run);
    }

    /// Marks `bits` woken, without waking the run.
    pub fn mark(&self, bits: u8) {
        self.woken.fetch_or(bits, Ordering::SeqCst);
    }

    /// True when `bit` is marked woken.
    pub fn is_marked(&self, bit: u8) -> bool {
        self.woken.load(Ordering::SeqCst) & bit != 0
    }

    /// The bits marked woken, cleared.
    pub fn take(&self) -> u8 {
        self.woken.swap(0, Ordering::SeqCst)
    }
}

/// The waker of one bit of [`Wakes`].
struct BitWaker {
    wakes: Arc<Wakes>,
    bit: u8,
}

impl Wake for BitWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.mark(self.bit);
        self.wakes.run.wake();
    }
}
