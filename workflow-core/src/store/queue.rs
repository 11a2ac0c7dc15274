//! Queue rate limits: GCRA (the generic cell rate algorithm) over one stored time per queue.

/// How many of `wanted` claims a queue allows at `now_ms`, and its new theoretical arrival
/// time. `tat_ms` is the stored one; `rate_per_sec` claims per second with bursts of `burst`.
pub(crate) fn gcra_allow(
    now_ms: f64,
    tat_ms: f64,
    rate_per_sec: f64,
    burst: u32,
    wanted: u32,
) -> (u32, f64) {
    if rate_per_sec <= 0.0 {
        return (0, tat_ms);
    }
    let interval = 1000.0 / rate_per_sec;
    let tat = tat_ms.max(now_ms);
    let room = (now_ms + f64::from(burst.max(1)) * interval - tat) / interval;
    let allowed = (room.floor().max(0.0) as u32).min(wanted);
    (allowed, tat + f64::from(allowed) * interval)
}

#[cfg(test)]
mod tests {
    use super::gcra_allow;

    #[test]
    fn a_burst_then_the_rate() {
        // 10 per second, bursts of 3: three at once, then one every 100 ms.
        let (n, tat) = gcra_allow(0.0, 0.0, 10.0, 3, 100);
        assert_eq!(n, 3);
        let (n, tat) = gcra_allow(50.0, tat, 10.0, 3, 100);
        assert_eq!(n, 0);
        let (n, _) = gcra_allow(100.0, tat, 10.0, 3, 100);
        assert_eq!(n, 1);
    }

    #[test]
    fn never_more_than_the_rate_over_a_long_window() {
        let (mut tat, mut total) = (0.0, 0);
        for ms in (0..10_000).step_by(7) {
            let (n, next) = gcra_allow(f64::from(ms), tat, 20.0, 5, 1_000);
            tat = next;
            total += n;
        }
        // 10 s at 20/s plus one burst of 5.
        assert!(total <= 205, "{total}");
        assert!(total >= 195, "{total}");
    }

    #[test]
    fn a_zero_rate_allows_nothing() {
        assert_eq!(gcra_allow(0.0, 0.0, 0.0, 3, 5).0, 0);
    }
}
