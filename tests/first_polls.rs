//! The order in which a run polls the work it starts (`scheduler/in_flight.rs`): new work is
//! polled after the work already pending, one unit at a time, so a step whose outcome stops the
//! run (a failure, a cancellation, a race won) is handled before anything started after it
//! runs; every saga step that ran to its end is compensated when the run stops; in a race
//! where one racer is woken before the other, that one wins, whichever started first; and a step
//! future that registers its waker only once is still woken, also after a race cancelled the
//! steps beside it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use workflow_core::prelude::*;

#[path = "common/step_log.rs"]
mod step_log;
use step_log::Log;

/// Every saga step whose body ran to its end, except `kept` (a race's winner, which the run
/// keeps), is compensated when the run stops.
fn assert_ran_means_undone(log: &[String], kept: Option<&str>) {
    for entry in log {
        if let Some(step) = entry.strip_suffix(" ran") {
            assert!(
                Some(step) == kept || log.contains(&format!("{step} undone")),
                "saga step `{step}` ran to completion but was never compensated: {log:?}"
            );
        }
    }
}

// 1. A failure: `check` (launched first) fails; `book` (a saga step) is launched in the same turn.
#[derive(Default)]
struct FailFast {
    log: Log,
}

#[workflow]
impl FailFast {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[saga_step(after = start, compensation = undo_book)]
    async fn book(&self, x: u32) -> u32 {
        self.log.push("book ran");
        x
    }
    #[step(after = start)]
    async fn check(&self, _x: u32) -> Result<u32, StepError> {
        Err(StepError::permanent(StepError::msg("no")))
    }
    #[step(after = [book, check])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
    async fn undo_book(&self, _x: u32) {
        self.log.push("book undone");
    }
}

#[tokio::test]
async fn a_saga_step_that_ran_is_compensated_when_a_sibling_fails() {
    let wf = FailFast::default();
    let result = Engine::in_memory().run(&wf, ()).await;
    assert!(result.is_err());
    assert_ran_means_undone(&wf.log.entries(), None);
}

// 2. A race: `a` and `b` (saga steps) race into `pick`.
#[derive(Default)]
struct Race {
    log: Log,
}

#[workflow]
impl Race {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[saga_step(after = start, compensation = undo_a)]
    async fn a(&self, _x: u32) -> String {
        self.log.push("a ran");
        "a".into()
    }
    #[saga_step(after = start, compensation = undo_b)]
    async fn b(&self, _x: u32) -> String {
        self.log.push("b ran");
        "b".into()
    }
    #[step(after = first(a, b))]
    async fn pick(&self, x: String) -> String {
        x
    }
    async fn undo_a(&self, _x: String) {
        self.log.push("a undone");
    }
    async fn undo_b(&self, _x: String) {
        self.log.push("b undone");
    }
}

#[tokio::test]
async fn a_losing_racer_that_ran_is_compensated() {
    let wf = Race::default();
    let result = Engine::in_memory().run(&wf, ()).await.unwrap();
    // The winner is not compensated; every loser that ran is.
    assert_ran_means_undone(&wf.log.entries(), Some(&result));
}

// 3. Cancellation: `start` cancels the run; `a` and `b` (saga steps) are launched after it.
#[derive(Default)]
struct Cancel {
    log: Log,
    token: CancellationToken,
}

#[workflow]
impl Cancel {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        self.token.cancel();
        1
    }
    #[saga_step(after = start, compensation = undo_a)]
    async fn a(&self, x: u32) -> u32 {
        self.log.push("a ran");
        x
    }
    #[saga_step(after = start, compensation = undo_b)]
    async fn b(&self, x: u32) -> u32 {
        self.log.push("b ran");
        x
    }
    #[step(after = [a, b])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
    async fn undo_a(&self, _x: u32) {
        self.log.push("a undone");
    }
    async fn undo_b(&self, _x: u32) {
        self.log.push("b undone");
    }
}

#[tokio::test]
async fn saga_steps_that_ran_before_a_cancellation_are_compensated() {
    let wf = Cancel::default();
    let options = RunOptions::new().cancel_token(wf.token.clone());
    let done = Engine::in_memory().run_with(&wf, (), options).await;
    let err = done.result.unwrap_err();
    assert!(err.to_string().contains("cancel"), "{err}");
    assert_ran_means_undone(&wf.log.entries(), None);
    // The cancellation is seen before the steps after `start` are polled at all.
    assert_eq!(wf.log.entries(), Vec::<String>::new());
}

// 4. Which racer wins: `p` and `q` are released in that order in one turn of the runtime;
// `a` (after `p`) does not wait. `q` was done before `a` even started.
#[derive(Default)]
struct Order {
    gates: Mutex<Vec<(&'static str, tokio::sync::oneshot::Receiver<()>)>>,
}

impl Order {
    fn gate(&self, name: &str) -> tokio::sync::oneshot::Receiver<()> {
        let mut gates = self.gates.lock().unwrap();
        let at = gates.iter().position(|(n, _)| *n == name).unwrap();
        gates.remove(at).1
    }
}

#[workflow]
impl Order {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[step(after = start)]
    async fn p(&self, x: u32) -> u32 {
        let gate = self.gate("p");
        gate.await.unwrap();
        x
    }
    #[step(after = start)]
    async fn q(&self, _x: u32) -> String {
        let gate = self.gate("q");
        gate.await.unwrap();
        "q".into()
    }
    #[step(after = p)]
    async fn a(&self, _x: u32) -> String {
        "a".into()
    }
    #[step(after = first(q, a))]
    async fn pick(&self, x: String) -> String {
        x
    }
}

#[tokio::test]
async fn an_output_ready_before_a_step_starts_is_handled_first() {
    let wf = Order::default();
    let (p_tx, p_rx) = tokio::sync::oneshot::channel();
    let (q_tx, q_rx) = tokio::sync::oneshot::channel();
    wf.gates.lock().unwrap().extend([("p", p_rx), ("q", q_rx)]);
    tokio::spawn(async move {
        // Let the run start both steps, then release both in one turn.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        p_tx.send(()).unwrap();
        q_tx.send(()).unwrap();
    });
    let winner = Engine::in_memory().run(&wf, ()).await.unwrap();
    assert_eq!(winner, "q");
}

// 5. A saga `for_each` whose second item fails at once: items after it ran too.
#[derive(Default)]
struct Items {
    log: Log,
}

#[workflow]
impl Items {
    #[step]
    async fn list(&self, n: u32) -> Vec<u32> {
        (1..=n).collect()
    }
    #[saga_step(after = list, for_each, compensation = release)]
    async fn reserve(&self, seat: u32) -> Result<u32, StepError> {
        if seat == 2 {
            return Err(StepError::permanent(StepError::msg("seat 2 taken")));
        }
        self.log.push(format!("seat{seat} ran"));
        Ok(seat)
    }
    #[step(after = reserve)]
    async fn done(&self, seats: Vec<u32>) -> usize {
        seats.len()
    }
    async fn release(&self, seat: u32) {
        self.log.push(format!("seat{seat} undone"));
    }
}

#[tokio::test]
async fn every_saga_item_that_ran_is_compensated_when_an_item_fails() {
    let wf = Items::default();
    let err = Engine::in_memory().run(&wf, 5).await.unwrap_err();
    assert!(err.to_string().contains("seat 2 taken"), "{err}");
    assert_ran_means_undone(&wf.log.entries(), None);
}

// `p` is pending (in the set) before `a` starts. `w`, started right after `a`, releases
// `p` and then `a` from inside its own poll: p's wake comes first.
struct WakeOrder {
    p_rx: Mutex<Option<oneshot::Receiver<()>>>,
    a_rx: Mutex<Option<oneshot::Receiver<()>>>,
    p_tx: Mutex<Option<oneshot::Sender<()>>>,
    a_tx: Mutex<Option<oneshot::Sender<()>>>,
    log: Log,
}

impl WakeOrder {
    /// With the gates of `p` and `a` closed.
    fn gated() -> Self {
        let (p_tx, p_rx) = oneshot::channel();
        let (a_tx, a_rx) = oneshot::channel();
        WakeOrder {
            p_rx: Mutex::new(Some(p_rx)),
            a_rx: Mutex::new(Some(a_rx)),
            p_tx: Mutex::new(Some(p_tx)),
            a_tx: Mutex::new(Some(a_tx)),
            log: Log::default(),
        }
    }
}

#[workflow]
impl WakeOrder {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[step(after = start)]
    async fn x(&self, x: u32) -> u32 {
        self.log.push("x");
        x
    }
    #[step(after = start)]
    async fn p(&self, _x: u32) -> String {
        let rx = self.p_rx.lock().unwrap().take().unwrap();
        self.log.push("p first poll");
        rx.await.unwrap();
        "p".into()
    }
    #[step(after = x)]
    async fn w(&self, x: u32) -> u32 {
        self.log.push("w releases p, then a");
        self.p_tx.lock().unwrap().take().unwrap().send(()).unwrap();
        self.a_tx.lock().unwrap().take().unwrap().send(()).unwrap();
        x
    }
    #[step(after = x)]
    async fn a(&self, _x: u32) -> String {
        let rx = self.a_rx.lock().unwrap().take().unwrap();
        self.log.push("a first poll");
        rx.await.unwrap();
        "a".into()
    }
    #[step(after = first(p, a))]
    async fn pick(&self, s: String) -> String {
        s
    }
    #[step(after = [pick, w])]
    async fn end(&self, s: String, _w: u32) -> String {
        s
    }
}

#[tokio::test]
async fn the_racer_woken_first_wins() {
    let wf = WakeOrder::gated();
    let winner = Engine::in_memory().run(&wf, ()).await.unwrap();
    assert_eq!(winner, "p", "p was woken before a: {:?}", wf.log.entries());
}

/// Registers its waker on the first poll only (a thread wakes it later); later polls ignore
/// `cx`. Against the `Future` contract, but it works under `tokio::spawn`, `join!`, `select!`
/// and `FuturesUnordered`, whose wakers never change: it works here too.
struct OnceRegistered {
    done: Arc<AtomicBool>,
    started: bool,
}

impl OnceRegistered {
    /// Done about 50 ms after its first poll.
    fn wait() -> Self {
        OnceRegistered {
            done: Arc::default(),
            started: false,
        }
    }
}

impl Future for OnceRegistered {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.load(SeqCst) {
            return Poll::Ready(());
        }
        if !self.started {
            self.started = true;
            let done = self.done.clone();
            let waker = cx.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                done.store(true, SeqCst);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

#[derive(Default)]
struct Once;

#[workflow]
impl Once {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[step(after = start)]
    async fn slow(&self, x: u32) -> u32 {
        OnceRegistered::wait().await;
        x
    }
    #[step(after = start)]
    async fn other(&self, x: u32) -> u32 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        x
    }
    #[step(after = [slow, other])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

#[tokio::test]
async fn a_future_that_registers_its_waker_once_is_woken() {
    let engine = Engine::in_memory();
    let run = engine.run(&Once, ());
    let out = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert_eq!(
        out.expect("the run hung: the wake went to a stale waker")
            .unwrap(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_racer_woken_first_wins_multi_thread() {
    let wf = WakeOrder::gated();
    let winner = Engine::in_memory().run(&wf, ()).await.unwrap();
    assert_eq!(winner, "p", "p was woken before a");
}

/// `p` and `q` race, both waiting at their first poll; a helper task releases them in one turn
/// of the runtime, `first` before the other.
struct Released {
    first: &'static str,
    gates: Mutex<Vec<(&'static str, oneshot::Receiver<()>)>>,
    senders: Mutex<Vec<(&'static str, oneshot::Sender<()>)>>,
}

impl Released {
    fn new(first: &'static str) -> Self {
        let (p_tx, p_rx) = oneshot::channel();
        let (q_tx, q_rx) = oneshot::channel();
        Released {
            first,
            gates: Mutex::new(vec![("p", p_rx), ("q", q_rx)]),
            senders: Mutex::new(vec![("p", p_tx), ("q", q_tx)]),
        }
    }

    async fn wait(&self, name: &str) -> String {
        let gate = {
            let mut gates = self.gates.lock().unwrap();
            let at = gates.iter().position(|(n, _)| *n == name).unwrap();
            gates.remove(at).1
        };
        gate.await.unwrap();
        name.to_owned()
    }

    /// Releases both gates, `first` first, once the run has polled both racers.
    fn release_later(&self) -> tokio::task::JoinHandle<()> {
        let mut senders = std::mem::take(&mut *self.senders.lock().unwrap());
        senders.sort_by_key(|(name, _)| *name != self.first);
        tokio::spawn(async move {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            for (_, tx) in senders {
                tx.send(()).unwrap();
            }
        })
    }
}

#[workflow]
impl Released {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[step(after = start)]
    async fn p(&self, _x: u32) -> String {
        self.wait("p").await
    }
    #[step(after = start)]
    async fn q(&self, _x: u32) -> String {
        self.wait("q").await
    }
    #[step(after = first(p, q))]
    async fn pick(&self, s: String) -> String {
        s
    }
}

/// Whatever order the racers started in, the one released (woken) first wins: both orders are
/// run, so a scheduler that prefers the racer it started first fails one of them.
#[tokio::test]
async fn the_racer_woken_first_wins_whichever_started_first() {
    for first in ["p", "q"] {
        let wf = Released::new(first);
        let releasing = wf.release_later();
        let winner = Engine::in_memory().run(&wf, ()).await.unwrap();
        releasing.await.unwrap();
        assert_eq!(winner, first, "{first} was released first");
    }
}

/// `fast` wins a race against `never` while `slow`, beside the race, waits on a waker it
/// registered once, before the race was decided.
#[derive(Default)]
struct RaceBeside;

#[workflow]
impl RaceBeside {
    #[step]
    async fn start(&self, _i: ()) -> u32 {
        1
    }
    #[step(after = start)]
    async fn slow(&self, x: u32) -> u32 {
        OnceRegistered::wait().await;
        x
    }
    #[step(after = start)]
    async fn fast(&self, x: u32) -> u32 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        x
    }
    #[step(after = start)]
    async fn never(&self, x: u32) -> u32 {
        std::future::pending::<()>().await;
        x
    }
    #[step(after = first(fast, never))]
    async fn pick(&self, x: u32) -> u32 {
        x
    }
    #[step(after = [pick, slow])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

#[tokio::test]
async fn cancelling_a_race_loser_leaves_the_other_steps_wakers_alone() {
    let engine = Engine::in_memory();
    let run = engine.run(&RaceBeside, ());
    let out = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert_eq!(
        out.expect("the run hung: cancelling the loser moved `slow` off its waker")
            .unwrap(),
        2
    );
}

/// Counts its polls; ready once `open` is set (by the last item of `Busy::item`).
struct CountedGate<'a> {
    polls: &'a AtomicUsize,
    open: &'a AtomicBool,
    waker: &'a Mutex<Option<std::task::Waker>>,
}

impl Future for CountedGate<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, SeqCst);
        if self.open.load(SeqCst) {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// `wait` waits, beside 1,000 items that finish at once, until the last item lets it go.
#[derive(Default)]
struct Busy {
    polls: AtomicUsize,
    open: AtomicBool,
    waker: Mutex<Option<std::task::Waker>>,
    done: AtomicUsize,
}

#[workflow]
impl Busy {
    #[step]
    async fn start(&self, n: u32) -> Vec<u32> {
        (0..n).collect()
    }
    #[step(after = start, for_each)]
    async fn item(&self, i: u32) -> u32 {
        if self.done.fetch_add(1, SeqCst) + 1 == 1_000 {
            self.open.store(true, SeqCst);
            if let Some(waker) = self.waker.lock().unwrap().take() {
                waker.wake();
            }
        }
        i
    }
    #[step(after = start)]
    async fn wait(&self, items: Vec<u32>) -> usize {
        let (polls, open, waker) = (&self.polls, &self.open, &self.waker);
        CountedGate { polls, open, waker }.await;
        items.len()
    }
    #[step(after = [wait, item])]
    async fn end(&self, n: usize, items: Vec<u32>) -> usize {
        n + items.len()
    }
}

/// A step that waits is polled again when it is woken, not at each of the run's other events:
/// here its two polls, not one per item.
#[tokio::test]
async fn a_waiting_step_is_not_polled_at_every_event_of_the_run() {
    let wf = Busy::default();
    let out = Engine::in_memory().run(&wf, 1_000).await.unwrap();
    assert_eq!(out, 2_000);
    let polls = wf.polls.load(SeqCst);
    // At least two: it waited while the items ran (else this test checks nothing).
    assert!(
        (2..=3).contains(&polls),
        "`wait` was polled {polls} times beside 1,000 items"
    );
}
