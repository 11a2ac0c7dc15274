//! A fresh PostgreSQL schema for a test, on the server CI starts (`scripts/postgres.sh`).

/// A fresh schema on the PostgreSQL test server, as a store URL; `None` (skip) without a
/// server, unless CI requires one.
pub async fn postgres_store(name: &str) -> Option<String> {
    use sqlx::Connection;
    let server = match std::env::var("WORKFLOW_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("WORKFLOW_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "WORKFLOW_REQUIRE_POSTGRES=1 but WORKFLOW_TEST_POSTGRES_URL is not set"
            );
            return None;
        }
    };
    let schema = format!("{name}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL test server is unreachable: {e}"));
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let separator = if server.contains('?') { '&' } else { '?' };
    Some(format!("{server}{separator}options[search_path]={schema}"))
}
