//! The raw ceilings: PostgreSQL commits (8 clients, one row each, and three statements
//! each) and RabbitMQ persistent messages with publisher confirms (pipelined, and awaited
//! one by one), published and consumed with one ack each.

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// PostgreSQL clients committing at the same time.
pub const CLIENTS: usize = 8;

/// Commits per second over `window`: single-row inserts, or (`three_statements`) two
/// inserts and an update per transaction.
pub async fn postgres(url: &str, window: Duration, three_statements: bool) -> Result<f64, String> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CLIENTS as u32)
        .connect(url)
        .await
        .map_err(|e| format!("PostgreSQL at {url}: {e}"))?;
    let table = format!("loadgen_calibration_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, n bigint NOT NULL)"
    )))
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;
    let insert = format!("INSERT INTO {table} (n) VALUES ($1)");
    let update = format!("UPDATE {table} SET n = n + 1 WHERE id = $1");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (pool, done, insert, update) =
            (pool.clone(), done.clone(), insert.clone(), update.clone());
        clients.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let result = if three_statements {
                    async {
                        let mut tx = pool.begin().await?;
                        for _ in 0..2 {
                            sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                                .bind(client as i64)
                                .execute(&mut *tx)
                                .await?;
                        }
                        sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                            .bind(1i64)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await
                    }
                    .await
                } else {
                    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                        .bind(client as i64)
                        .execute(&pool)
                        .await
                        .map(|_| ())
                };
                if result.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for client in clients {
        let _ = client.await;
    }
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await;
    pool.close().await;
    Ok(done.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
}

/// Persistent messages per second over `window` through one durable queue, published with
/// confirms (`pipelined`, or each awaited before the next) and consumed with one ack each.
pub async fn rabbitmq(url: &str, window: Duration, pipelined: bool) -> Result<f64, String> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(|e| format!("RabbitMQ at {url}: {e}"))?;
    let publisher = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let consumer = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let queue = format!("loadgen-calibration-{}", uuid::Uuid::new_v4().simple());
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    publisher
        .queue_declare(queue.as_str().into(), durable, FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    consumer
        .basic_qos(256, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut deliveries = consumer
        .basic_consume(
            queue.as_str().into(),
            "calibration".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = consumed.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(delivery)) = deliveries.next().await {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let body = vec![b'x'; 300];
    let properties = BasicProperties::default().with_delivery_mode(2);
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    while started.elapsed() < window {
        let confirm = publisher
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if pipelined {
            pending.push_back(confirm);
            if pending.len() >= 512 {
                pending
                    .pop_front()
                    .expect("not empty")
                    .await
                    .map_err(|e| e.to_string())?;
            }
        } else {
            confirm.await.map_err(|e| e.to_string())?;
        }
    }
    for confirm in pending {
        confirm.await.map_err(|e| e.to_string())?;
    }
    let consumed_in_window = consumed.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    reader.abort();
    let _ = publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = connection.close(200, "calibrated".into()).await;
    Ok(consumed_in_window as f64 / elapsed)
}
