//! The `for_each` workload shared by the overhead and durable benches and tests/durable.rs.

use workflow_core::prelude::*;

/// `items` (makes `n` items) -> `work` (`for_each`, `x + 1` per item) -> `join` (sums).
pub struct FanOut;

#[workflow]
impl FanOut {
    #[step]
    async fn items(&self, n: u64) -> Vec<u64> {
        (0..n).collect()
    }
    #[step(after = items, for_each)]
    async fn work(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = work)]
    async fn join(&self, results: Vec<u64>) -> u64 {
        results.iter().sum()
    }
}
