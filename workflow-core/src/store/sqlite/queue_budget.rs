//! Queue limits inside one claim: concurrency slots and GCRA tokens of every queue touched.

use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

use crate::store::queue::gcra_allow;

/// What the queues touched by one claim still allow: concurrency slots and GCRA tokens.
#[derive(Default)]
pub(super) struct QueueBudget {
    queues: std::collections::HashMap<String, QueueLimits>,
}

/// One queue's budget during a claim (`None`: unlimited).
struct QueueLimits {
    slots_left: Option<i64>,
    rate: Option<RateBudget>,
}

/// A rate-limited queue: its stored GCRA state and the claims taken so far.
struct RateBudget {
    rate: f64,
    burst: u32,
    tat: f64,
    now: f64,
    allowed: u32,
    used: u32,
}

impl QueueBudget {
    /// Takes one run's worth of the queue's budget; false when the queue is full.
    pub async fn take(
        &mut self,
        tx: &mut SqliteConnection,
        queue: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        if !self.queues.contains_key(queue) {
            let limits = load_limits(tx, queue, now).await?;
            self.queues.insert(queue.to_owned(), limits);
        }
        let Some(limits) = self.queues.get_mut(queue) else {
            return Ok(true);
        };
        let full = limits.slots_left.is_some_and(|s| s <= 0)
            || limits.rate.as_ref().is_some_and(|r| r.used >= r.allowed);
        if full {
            return Ok(false);
        }
        if let Some(slots) = &mut limits.slots_left {
            *slots -= 1;
        }
        if let Some(rate) = &mut limits.rate {
            rate.used += 1;
        }
        Ok(true)
    }

    /// Stores the GCRA time of every rate-limited queue, advanced by the claims it allowed.
    pub async fn save(&self, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        for (queue, limits) in &self.queues {
            let Some(rate) = &limits.rate else { continue };
            let (_, tat) = gcra_allow(rate.now, rate.tat, rate.rate, rate.burst, rate.used);
            sqlx::query("UPDATE wf_queues SET tat = ? WHERE queue = ?")
                .bind(tat.ceil() as i64)
                .bind(queue)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// Reads a queue's limits and how much of them is in use now.
async fn load_limits(
    tx: &mut SqliteConnection,
    queue: &str,
    now: i64,
) -> Result<QueueLimits, sqlx::Error> {
    let row =
        sqlx::query("SELECT concurrency, rate_per_sec, burst, tat FROM wf_queues WHERE queue = ?")
            .bind(queue)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = row else {
        return Ok(QueueLimits {
            slots_left: None,
            rate: None,
        });
    };
    let slots_left = match row.try_get::<Option<i64>, _>("concurrency")? {
        Some(limit) => {
            let busy: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM wf_runs WHERE queue = ? AND status = 'claimed'",
            )
            .bind(queue)
            .fetch_one(&mut *tx)
            .await?;
            Some(limit - busy)
        }
        None => None,
    };
    let rate = match row.try_get::<Option<f64>, _>("rate_per_sec")? {
        Some(rate) => {
            let burst = row.try_get::<i64, _>("burst")?.max(1) as u32;
            let tat = row.try_get::<i64, _>("tat")? as f64;
            let now = now as f64;
            let (allowed, _) = gcra_allow(now, tat, rate, burst, u32::MAX);
            Some(RateBudget {
                rate,
                burst,
                tat,
                now,
                allowed,
                used: 0,
            })
        }
        None => None,
    };
    Ok(QueueLimits { slots_left, rate })
}
