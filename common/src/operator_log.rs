//! The operator log (CONTRACT §16): one row per admin action — who, what, on what, what it
//! replaced and how it ended — in the database of the service the action changed.
//! order-service keeps the console's actions, inventory-service its restocks; each has the
//! same `operator_log` table (order 0005, inventory 0004), which a trigger keeps
//! append-only.
//!
//! [`append`] takes a connection, so an action that lives in the same database writes its
//! entry in its own transaction.

use crate::http::Actor;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{FromRow, PgExecutor};

/// Most entries one read returns.
pub const MAX_LIMIT: i64 = 500;
/// Entries a read returns when it does not say.
pub const DEFAULT_LIMIT: i64 = 50;

/// One recorded admin action, as `GET /admin/operator-log` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// When it happened: RFC 3339 in UTC, with microseconds; pass as `before` for the page
    /// after this entry.
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `admin-token`, or the `sub` of the `orders:admin` token used.
    pub actor: String,
    /// `replay`, `replay-all`, `replay-group`, `discard`, `discard-group`, `edit`,
    /// `restock`, `cancel`.
    pub action: String,
    /// What it acted on: `service/message_id`, a service, `group/<id>`, a product, an order.
    pub target: String,
    /// What the action replaced or worked from (an edit's original body, the previous stock).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// How it ended (e.g. `{"replayed": 3}`).
    #[schema(value_type = Object)]
    pub result: Value,
    /// The service whose database holds the entry: `order` or `inventory`.
    pub service: String,
}

#[derive(FromRow)]
struct Row {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: String,
    detail: sqlx::types::Json<Value>,
    result: sqlx::types::Json<Value>,
}

/// Appends one entry; on `conn`, so it commits (or not) with the caller's transaction.
#[tracing::instrument(skip(conn, actor, detail, result), fields(actor = actor.name()))]
pub async fn append(
    conn: impl PgExecutor<'_>,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Value,
    result: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO operator_log (actor, action, target, detail, result)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor.name())
    .bind(action)
    .bind(target)
    .bind(sqlx::types::Json(detail))
    .bind(sqlx::types::Json(result))
    .execute(conn)
    .await?;
    tracing::info!(action, target, "operator action logged");
    Ok(())
}

/// Up to `limit` entries older than `before` (all, without it), newest first; `service`
/// names this database in each entry.
pub async fn page(
    db: impl PgExecutor<'_>,
    limit: i64,
    before: Option<DateTime<Utc>>,
    service: &str,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, actor, action, target, detail, result FROM operator_log
         WHERE $2::timestamptz IS NULL OR at < $2
         ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(before)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Entry {
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            detail: row.detail.0,
            result: row.result.0,
            service: service.to_owned(),
        })
        .collect())
}

/// `limit=&before=` of a log read, checked.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Entries to return, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only entries strictly older than this moment (an entry's `at`, RFC 3339).
    pub before: Option<String>,
}

impl PageParams {
    /// The limit and the moment, or what is wrong with them.
    pub fn parse(&self) -> Result<(i64, Option<DateTime<Utc>>), crate::http::ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(crate::http::ApiError::invalid(
                vec!["query".into(), "limit".into()],
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        let before = match &self.before {
            None => None,
            Some(text) => Some(parse_moment(text).ok_or_else(|| {
                crate::http::ApiError::invalid(
                    vec!["query".into(), "before".into()],
                    "must be a moment in RFC 3339, as an entry's `at`",
                )
            })?),
        };
        Ok((limit, before))
    }
}

/// RFC 3339, or ISO 8601 without an offset (taken as UTC).
fn parse_moment(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|at| at.and_utc())
        })
}

/// Merges two newest-first pages into one of at most `limit`, newest first.
pub fn merge(mut a: Vec<Entry>, b: Vec<Entry>, limit: i64) -> Vec<Entry> {
    a.extend(b);
    a.sort_by_key(|entry| std::cmp::Reverse(entry.at));
    a.truncate(usize::try_from(limit).unwrap_or(0));
    a
}

/// `at` as the log shows it.
pub fn format_moment(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(at: &str, service: &str) -> Entry {
        Entry {
            at: parse_moment(at).unwrap(),
            actor: "admin-token".into(),
            action: "replay".into(),
            target: "x".into(),
            detail: json!({}),
            result: json!({}),
            service: service.into(),
        }
    }

    #[test]
    fn before_takes_rfc_3339_and_naive_moments() {
        let at = parse_moment("2026-12-06T22:00:00.123456Z").unwrap();
        assert_eq!(format_moment(&at), "2026-12-06T22:00:00.123456Z");
        assert_eq!(parse_moment("2026-12-06T22:00:00.123456"), Some(at));
        assert_eq!(parse_moment("2026-12-06T23:00:00.123456+01:00"), Some(at));
        assert_eq!(parse_moment("yesterday"), None);
    }

    #[test]
    fn merged_pages_are_newest_first_and_cut_to_the_limit() {
        let order = vec![
            entry("2026-12-06T22:00:03Z", "order"),
            entry("2026-12-06T22:00:01Z", "order"),
        ];
        let inventory = vec![entry("2026-12-06T22:00:02Z", "inventory")];
        let merged = merge(order, inventory, 2);
        let services: Vec<_> = merged.iter().map(|e| e.service.as_str()).collect();
        assert_eq!(services, ["order", "inventory"]);
    }
}
