//! The built-in provider, used when `PAYMENT_PROVIDER_URL` is unset. It keeps its ledger in
//! the service's database (the `simulator_*` tables), so like a real provider it gives every
//! repeat of a key the stored answer — across restarts and replicas — and refuses a key
//! reused with another body.
//!
//! Each attempt succeeds with `PAYMENT_SUCCESS_RATE`. With `PAYMENT_SEED` the answer to the
//! k-th attempt of the n-th order the simulator is asked to charge depends only on the
//! seed, n and k — not on the (random) order id — so a test's outcomes are the same in
//! every run; which of its orders gets which outcome follows the order they arrive in.
//! n is given once, at an order's first charge, with no gap (see [`rank`]): retries,
//! redeliveries, rolled-back batches and later attempts move no other order's n.

mod outcome;

pub use outcome::{decide, rank};

use super::{ChargeAnswer, ChargeRequest, RefundAnswer, RefundRequest, Unknown};
use contract::OrderId;
use sqlx::PgPool;
use uuid::Uuid;

pub struct Simulator {
    pub pool: PgPool,
    pub success_rate: f64,
    pub seed: Option<u64>,
}

/// A stored charge: the request it answered and the answer.
#[derive(sqlx::FromRow)]
struct StoredCharge {
    order_id: OrderId,
    amount_cents: i64,
    charge_id: String,
    succeeded: bool,
}

/// What the simulator knew before a charge: the key's stored answer, and the order's tries.
struct Seen {
    stored: Option<StoredCharge>,
    tried: u64,
}

type SeenRow = (
    i64,
    Option<OrderId>,
    Option<i64>,
    Option<String>,
    Option<bool>,
);

#[derive(sqlx::FromRow)]
struct StoredRefund {
    charge_id: String,
    amount_cents: i64,
    refund_id: String,
}

impl Simulator {
    pub async fn charge(&self, request: &ChargeRequest) -> ChargeAnswer {
        match self.try_charge(request).await {
            Ok(answer) => answer,
            Err(error) => ChargeAnswer::Unknown(Unknown::new(format!("simulator: {error}"))),
        }
    }

    pub async fn refund(&self, request: &RefundRequest) -> RefundAnswer {
        match self.try_refund(request).await {
            Ok(answer) => answer,
            Err(error) => RefundAnswer::Unknown(Unknown::new(format!("simulator: {error}"))),
        }
    }

    async fn try_charge(&self, request: &ChargeRequest) -> Result<ChargeAnswer, sqlx::Error> {
        let seen = self.look_up(request).await?;
        if let Some(stored) = seen.stored {
            return Ok(answer_again(&stored, request));
        }
        let succeeded = match self.seed {
            Some(_) => {
                let rank = rank(&mut *self.pool.acquire().await?, request.order_id).await?;
                decide(self.seed, self.success_rate, rank, seen.tried + 1)
            }
            // Without a seed the rank decides nothing: no order is numbered.
            None => decide(None, self.success_rate, 0, seen.tried + 1),
        };
        let inserted: Option<StoredCharge> = sqlx::query_as(
            "INSERT INTO simulator_charges (idempotency_key, order_id, amount_cents, charge_id, succeeded)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING order_id, amount_cents, charge_id, succeeded",
        )
        .bind(&request.key)
        .bind(request.order_id)
        .bind(request.amount.cents())
        .bind(new_charge_id())
        .bind(succeeded)
        .fetch_optional(&self.pool)
        .await?;
        // A concurrent try of the same key may have stored its answer first; that one holds.
        let stored = match inserted {
            Some(stored) => Some(stored),
            None => self.stored_charge(&request.key).await?,
        };
        Ok(stored.map_or_else(
            || ChargeAnswer::Unknown(Unknown::new("simulator lost its answer")),
            |stored| answer_again(&stored, request),
        ))
    }

    /// In one statement: the answer stored for the key, if any, and how many charges of
    /// the order were tried before.
    async fn look_up(&self, request: &ChargeRequest) -> Result<Seen, sqlx::Error> {
        let (tried, order_id, amount_cents, charge_id, succeeded): SeenRow = sqlx::query_as(
            "SELECT (SELECT count(*) FROM simulator_charges WHERE order_id = $2),
                    c.order_id, c.amount_cents, c.charge_id, c.succeeded
             FROM (SELECT 1) AS one
             LEFT JOIN simulator_charges c ON c.idempotency_key = $1",
        )
        .bind(&request.key)
        .bind(request.order_id)
        .fetch_one(&self.pool)
        .await?;
        let stored = match (order_id, amount_cents, charge_id, succeeded) {
            (Some(order_id), Some(amount_cents), Some(charge_id), Some(succeeded)) => {
                Some(StoredCharge {
                    order_id,
                    amount_cents,
                    charge_id,
                    succeeded,
                })
            }
            _ => None,
        };
        Ok(Seen {
            stored,
            tried: tried.max(0) as u64,
        })
    }

    async fn stored_charge(&self, key: &str) -> Result<Option<StoredCharge>, sqlx::Error> {
        sqlx::query_as(
            "SELECT order_id, amount_cents, charge_id, succeeded FROM simulator_charges
             WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
    }

    async fn try_refund(&self, request: &RefundRequest) -> Result<RefundAnswer, sqlx::Error> {
        let charge: Option<StoredCharge> = sqlx::query_as(
            "SELECT order_id, amount_cents, charge_id, succeeded FROM simulator_charges
             WHERE charge_id = $1",
        )
        .bind(&request.charge_id)
        .fetch_optional(&self.pool)
        .await?;
        match charge {
            Some(charge) if charge.succeeded && charge.amount_cents >= request.amount.cents() => {}
            _ => return Ok(refused("no succeeded charge of that amount")),
        }
        sqlx::query(
            "INSERT INTO simulator_refunds (idempotency_key, charge_id, amount_cents, refund_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&request.key)
        .bind(&request.charge_id)
        .bind(request.amount.cents())
        .bind(format!("re_sim_{}", Uuid::new_v4().simple()))
        .execute(&self.pool)
        .await?;
        let stored: StoredRefund = sqlx::query_as(
            "SELECT charge_id, amount_cents, refund_id FROM simulator_refunds
             WHERE idempotency_key = $1",
        )
        .bind(&request.key)
        .fetch_one(&self.pool)
        .await?;
        if stored.charge_id != request.charge_id || stored.amount_cents != request.amount.cents() {
            return Ok(refused("idempotency key reused with another body"));
        }
        Ok(RefundAnswer::Succeeded {
            refund_id: stored.refund_id,
        })
    }
}

/// Why the simulator declines.
pub const DECLINE_REASON: &str = "card declined (simulated)";

/// A fresh id for a charge the simulator answers.
pub fn new_charge_id() -> String {
    format!("ch_sim_{}", Uuid::new_v4().simple())
}

/// The stored answer of a key, or a refusal if the request is not the one it answered.
fn answer_again(stored: &StoredCharge, request: &ChargeRequest) -> ChargeAnswer {
    if stored.order_id != request.order_id || stored.amount_cents != request.amount.cents() {
        return ChargeAnswer::Unknown(Unknown {
            reason: "simulator refused: idempotency key reused with another body".into(),
            client_bug: true,
        });
    }
    if stored.succeeded {
        ChargeAnswer::Succeeded {
            charge_id: stored.charge_id.clone(),
        }
    } else {
        ChargeAnswer::Declined {
            reason: DECLINE_REASON.into(),
        }
    }
}

fn refused(reason: &str) -> RefundAnswer {
    RefundAnswer::Unknown(Unknown {
        reason: format!("simulator refused: {reason}"),
        client_bug: true,
    })
}
