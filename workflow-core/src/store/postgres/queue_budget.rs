//! Queue limits during a claim: concurrency slots and GCRA tokens, read under a row lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::NOW_MS;
use crate::store::queue::gcra_allow;

/// What the limited queues touched by one claim still allow: concurrency slots and GCRA
/// tokens. Loading it locks the queues' rows (in name order), so concurrent claimers of one
/// queue count its claimed runs one after the other: the limits are exact across workers.
#[derive(Default)]
pub(super) struct QueueBudget {
    queues: HashMap<String, QueueLimits>,
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
    pub(super) async fn load(
        conn: &mut PgConnection,
        queues: &BTreeSet<String>,
    ) -> Result<QueueBudget, sqlx::Error> {
        let mut budget = QueueBudget::default();
        if queues.is_empty() {
            return Ok(budget);
        }
        let names: Vec<&str> = queues.iter().map(String::as_str).collect();
        let sql = format!(
            "SELECT queue, concurrency, rate_per_sec, burst, tat, {NOW_MS} AS now
             FROM wf_queues WHERE queue = ANY($1) ORDER BY queue FOR UPDATE"
        );
        let rows = sqlx::query(&sql).bind(&names).fetch_all(&mut *conn).await?;
        // Counted after the locks are held: a claim of another worker committed before.
        let busy: BTreeMap<String, i64> = sqlx::query_as(
            "SELECT queue, COUNT(*) FROM wf_runs WHERE status = 'claimed' AND queue = ANY($1)
             GROUP BY queue",
        )
        .bind(&names)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        for row in rows {
            let queue: String = row.try_get("queue")?;
            let slots_left = row
                .try_get::<Option<i64>, _>("concurrency")?
                .map(|limit| limit - busy.get(&queue).copied().unwrap_or(0));
            let rate = match row.try_get::<Option<f64>, _>("rate_per_sec")? {
                Some(rate) => {
                    let burst = row
                        .try_get::<i64, _>("burst")?
                        .clamp(1, i64::from(u32::MAX)) as u32;
                    let tat = row.try_get::<i64, _>("tat")? as f64;
                    let now = row.try_get::<i64, _>("now")? as f64;
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
            budget
                .queues
                .insert(queue, QueueLimits { slots_left, rate });
        }
        Ok(budget)
    }

    /// Takes one run's worth of the queue's budget; false when the queue is full.
    pub(super) fn take(&mut self, queue: &str) -> bool {
        let Some(limits) = self.queues.get_mut(queue) else {
            return true;
        };
        let full = limits.slots_left.is_some_and(|s| s <= 0)
            || limits.rate.as_ref().is_some_and(|r| r.used >= r.allowed);
        if full {
            return false;
        }
        if let Some(slots) = &mut limits.slots_left {
            *slots -= 1;
        }
        if let Some(rate) = &mut limits.rate {
            rate.used += 1;
        }
        true
    }

    /// Stores the GCRA time of every rate-limited queue that allowed claims.
    pub(super) async fn save(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        for (queue, limits) in &self.queues {
            let Some(rate) = &limits.rate else { continue };
            if rate.used == 0 {
                continue;
            }
            let (_, tat) = gcra_allow(rate.now, rate.tat, rate.rate, rate.burst, rate.used);
            sqlx::query("UPDATE wf_queues SET tat = $2 WHERE queue = $1")
                .bind(queue)
                .bind(tat.ceil() as i64)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}
