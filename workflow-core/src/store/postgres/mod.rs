//! The PostgreSQL store: many workers on many machines over one database.
//!
//! The same tables and semantics as the SQLite store (see `postgres.sql`), with PostgreSQL's
//! concurrency in mind:
//!
//! - **One writer task with group commit.** Every write goes to a single writer task per store.
//!   It takes the first waiting request and every other request already queued (up to
//!   [`MAX_BATCH`]) and runs them in one transaction: one commit (one WAL flush) for the whole
//!   batch. A request that fails in the database (a unique violation, say) never fails the
//!   others: the batch is run again with each request inside its own savepoint.
//! - **The database's clock.** Leases, wake-ups, claims and rate limits compare with the
//!   server's `clock_timestamp()`, never with the clock of the process.
//! - **Claims** pick candidates with `FOR UPDATE SKIP LOCKED` in a CTE, so workers claiming at
//!   once take different runs. A queue with limits has its `wf_queues` row locked
//!   (`FOR UPDATE`) before its claimed runs are counted, so its concurrency and rate limits
//!   hold across every worker.
//! - **Fenced writes** check `run_id`, epoch, owner and status in the statement that writes (a
//!   step commit is one round trip: the fence `FOR SHARE` and the insert in one CTE), so a
//!   takeover (which bumps the epoch) waits for in-flight commits and rejects every later one.
//! - **Connections.** Reads use a small pool. The writer holds one connection and opens a new
//!   one when it breaks (a restarted server, `pg_terminate_backend`); a batch whose connection
//!   broke before its commit is run again, one whose commit may or may not have happened is
//!   reported as a [`StoreError::Database`] error to each of its requests.
//! - **LISTEN/NOTIFY.** Creating a run, sending a signal and requesting a cancel notify the
//!   `wf_runs` channel (payload: the run id) in their transaction; step commits never do.
//!   [`PostgresStore::listen`] subscribes. Notifications are hints: polling stays the truth.

mod queue_budget;
mod reads;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};
use sqlx::Connection;

use super::writer::{sql_store, unexpected, Op, Reply, Writer};
use super::StoreError;
use crate::run_id::RunId;
use reads::PgReads;
use writes::{run_batch, WriterConnection};

/// Schema version this build writes and reads (the same number as the SQLite store's).
const SCHEMA_VERSION: i64 = 4;
/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// Connections of the read pool.
pub(super) const READERS: u32 = 6;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may wait for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// First key of the advisory lock that serializes migrations (the second: the schema's hash).
const MIGRATION_LOCK: i32 = 0x5746_0002;
/// The channel that creating a run, sending a signal and requesting a cancel notify; the
/// payload is the run id. See [`PostgresStore::listen`].
pub const NOTIFY_CHANNEL: &str = "wf_runs";
/// The database's clock in milliseconds since the Unix epoch, evaluated once per statement.
const NOW_MS: &str = "(SELECT FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)";
/// The statuses of runs that are not finished, as an SQL list (an unknown status is neither:
/// commands refuse such a run as corrupt).
const LIVE: &str = "('ready', 'claimed', 'waiting')";
/// The fence of every write of a claimed run: `$1` run, `$2` epoch, `$3` owner.
const FENCE: &str = "run_id = $1 AND epoch = $2 AND owner = $3 AND status = 'claimed'";

/// Claimable now: ready, or parked and due (the same rule as the SQLite store).
fn claimable() -> String {
    format!("(status = 'ready' OR (status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= {NOW_MS}))")
}

fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn lease_ms(lease: Duration) -> i64 {
    lease.as_millis().min(i64::MAX as u128) as i64
}

/// The PostgreSQL store. Create it with [`PostgresStore::connect`] (or `Engine::postgres`).
///
/// Any number of processes may use one database at once; each store runs its own writer task.
pub struct PostgresStore {
    location: String,
    options: PgConnectOptions,
    reads: PgReads,
    writer: Writer,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
fn describe(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => options.get_host().to_owned(),
    };
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        host,
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// creates the store's tables in the connection's current schema if they are missing
    /// (put them in another schema with `?options[search_path]=name`). Several processes may
    /// connect to a new database at once: the migration holds an advisory lock.
    ///
    /// Errors: a malformed URL or a server that cannot be reached is a
    /// [`StoreError::Database`] saying so; tables of a newer schema version are
    /// [`StoreError::NewerSchema`]; `wf_*` tables that are not this store's (or of an older
    /// version) are [`StoreError::NotAStore`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let invalid = |detail: String| {
            StoreError::Database(format!(
                "invalid PostgreSQL URL: {detail} (expected postgres://user:password@host:port/database)"
            ))
        };
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            return Err(invalid(
                "the scheme is not postgres:// or postgresql://".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
        Self::open(options).await
    }

    async fn open(options: PgConnectOptions) -> Result<Self, StoreError> {
        let location = describe(&options);
        let mut conn = connect_once(&options.clone().application_name("workflow-store-writer"))
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to `{location}`: {e}")))?;
        migrate(&mut conn, &location).await?;
        let pool = PgPoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(60)))
            // A connection that broke while idle fails its first query, which is retried on
            // another connection (see `PgReads::read`): no ping before every read.
            .test_before_acquire(false)
            .connect_lazy_with(options.clone().application_name("workflow-store-reader"));
        let connection = WriterConnection {
            options: options.clone().application_name("workflow-store-writer"),
            conn: Some(conn),
        };
        let writer = Writer::spawn(connection, MAX_BATCH, |connection, jobs| {
            Box::pin(run_batch(connection, jobs))
        });
        Ok(PostgresStore {
            location,
            options,
            reads: PgReads { pool },
            writer,
        })
    }

    /// The database this store lives in (its URL without the password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Subscribes to the notifications of new runs, signals and cancels (see
    /// [`RunNotifications`]), on a connection of its own.
    pub async fn listen(&self) -> Result<RunNotifications, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(
                self.options
                    .clone()
                    .application_name("workflow-store-listener"),
            );
        let mut listener = PgListener::connect_with(&pool).await.map_err(db)?;
        listener.listen(NOTIFY_CHANNEL).await.map_err(db)?;
        Ok(RunNotifications { listener })
    }
}

/// Notifications of the `wf_runs` channel: the id of a run that was created, signalled or
/// asked to cancel. Hints only: notifications sent while the connection was down are lost, so
/// a worker polls as well.
pub struct RunNotifications {
    listener: PgListener,
}

impl std::fmt::Debug for RunNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunNotifications").finish_non_exhaustive()
    }
}

impl RunNotifications {
    /// The next notification's run id. Reconnects (and listens again) when the connection
    /// broke.
    pub async fn next(&mut self) -> Result<RunId, StoreError> {
        let notification = self.listener.recv().await.map_err(db)?;
        Ok(RunId::from(notification.payload()))
    }
}

/// Connects one connection, within [`CONNECT_TIMEOUT`].
async fn connect_once(options: &PgConnectOptions) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// Creates the schema in a fresh database (or schema); checks the version of an existing one.
/// Runs under a transaction-scoped advisory lock, so processes connecting at once do not
/// collide.
async fn migrate(conn: &mut PgConnection, location: &str) -> Result<(), StoreError> {
    let not_a_store = |detail: String| StoreError::NotAStore {
        location: location.to_owned(),
        detail,
    };
    let mut tx = conn.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(COALESCE(current_schema(), '')))")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()::TEXT")
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let Some(schema) = schema else {
        return Err(StoreError::Database(format!(
            "`{location}`: no schema to create the store's tables in (the search_path names no existing schema)"
        )));
    };
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::TEXT FROM pg_tables WHERE schemaname = current_schema()
           AND tablename LIKE 'wf\\_%' ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if tables.is_empty() {
        // A new store: version 3's tables, then the upgrades below.
        sqlx::raw_sql(include_str!("../postgres.sql"))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO wf_meta (key, value) VALUES ('schema_version', 3)")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    } else if !tables.iter().any(|t| t == "wf_meta") {
        return Err(not_a_store(format!(
            "schema `{schema}` has tables named like the store's ({}) but no wf_meta",
            tables.join(", ")
        )));
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT value::BIGINT FROM wf_meta WHERE key = 'schema_version'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| not_a_store(e.to_string()))?;
    match found {
        Some(SCHEMA_VERSION) => tx.commit().await.map_err(db),
        Some(found @ 2..SCHEMA_VERSION) => {
            for (from, upgrade) in UPGRADES {
                if from >= found {
                    sqlx::raw_sql(upgrade).execute(&mut *tx).await.map_err(db)?;
                }
            }
            sqlx::query("UPDATE wf_meta SET value = $1 WHERE key = 'schema_version'")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        }
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        other => Err(not_a_store(format!(
            "schema version {other:?} is not the {SCHEMA_VERSION} this build reads"
        ))),
    }
}

/// The schema's upgrades: from each version to the next.
const UPGRADES: [(i64, &str); 2] = [
    (2, include_str!("../postgres_v2_to_v3.sql")),
    (3, include_str!("../postgres_v3_to_v4.sql")),
];

sql_store!(PostgresStore);
