//! Sleeps by the real clock, for the worker's loops. Leases are wall-clock facts in the store,
//! so the worker's timers must not follow a paused test clock (`tokio::time::pause`); and
//! they must not hold that clock back either (a `spawn_blocking` sleep would stop tokio's
//! auto-advance). One thread per process serves every such sleep.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

struct Alarm {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Alarm {}
impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Alarms {
    heap: Mutex<(BinaryHeap<Reverse<Alarm>>, u64)>,
    changed: Condvar,
}

fn alarms() -> &'static Alarms {
    static ALARMS: OnceLock<&'static Alarms> = OnceLock::new();
    ALARMS.get_or_init(|| {
        let alarms: &'static Alarms = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("workflow-real-clock".into())
            .spawn(move || ring(alarms))
            .expect("spawn the worker's clock thread");
        alarms
    })
}

/// The clock thread: wakes each sleeper at its time.
fn ring(alarms: &Alarms) {
    let mut guard = alarms.heap.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        while guard.0.peek().is_some_and(|Reverse(a)| a.at <= now) {
            if let Some(Reverse(alarm)) = guard.0.pop() {
                let _ = alarm.wake.send(());
            }
        }
        let wait = guard
            .0
            .peek()
            .map_or(Duration::from_secs(3600), |Reverse(a)| a.at - now);
        guard = alarms
            .changed
            .wait_timeout(guard, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Resolves after `pause` of real time.
pub(crate) async fn real_sleep(pause: Duration) {
    let (wake, woken) = oneshot::channel();
    {
        let alarms = alarms();
        let mut guard = alarms.heap.lock().unwrap_or_else(|p| p.into_inner());
        guard.1 += 1;
        let seq = guard.1;
        guard.0.push(Reverse(Alarm {
            at: Instant::now() + pause,
            seq,
            wake,
        }));
        alarms.changed.notify_one();
    }
    let _ = woken.await;
}
