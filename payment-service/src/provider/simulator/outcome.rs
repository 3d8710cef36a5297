//! Which attempts the simulator lets succeed: each order's rank, given once in the order
//! orders arrive, and a draw that with `PAYMENT_SEED` depends only on the seed, the rank
//! and the attempt.

use contract::OrderId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The order's place among the orders the simulator was asked to charge (1 for the
/// first), given at its first charge and read back by every later attempt and retry.
/// Orders are numbered one at a time, under a lock on the table held to the end of the
/// caller's transaction (the consumer's, for a first attempt charged there), so the ranks
/// run 1, 2, 3 … in the order the orders first arrive, with no gap: unlike a sequence,
/// which PostgreSQL advances even for an insert that conflicts or rolls back, a retry or a
/// rolled-back batch moves no later order's rank.
pub async fn rank(conn: &mut sqlx::PgConnection, order_id: OrderId) -> Result<u64, sqlx::Error> {
    use sqlx::Connection;
    let ranked = sqlx::query_scalar("SELECT rank FROM simulator_orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&mut *conn)
        .await?;
    let rank: i64 = match ranked {
        Some(rank) => rank,
        None => {
            // A transaction of its own, or a savepoint in the caller's.
            let mut tx = conn.begin().await?;
            // Conflicts with itself, not with reads: one order is numbered at a time.
            sqlx::query("LOCK TABLE simulator_orders IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            // Under the lock this statement sees every rank given before it; an order
            // numbered meanwhile by the lock's previous holder keeps its rank.
            sqlx::query(
                "INSERT INTO simulator_orders (order_id, rank)
                 SELECT $1, coalesce(max(rank), 0) + 1 FROM simulator_orders
                 ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
            let rank = sqlx::query_scalar("SELECT rank FROM simulator_orders WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            rank
        }
    };
    Ok(rank.max(1) as u64)
}

/// Whether attempt `attempt` of the `rank`-th order succeeds. With a seed this depends only
/// on the seed, the rank and the attempt.
pub fn decide(seed: Option<u64>, success_rate: f64, rank: u64, attempt: u64) -> bool {
    match seed {
        Some(seed) => {
            let mixed = splitmix(seed ^ splitmix(rank ^ splitmix(attempt)));
            StdRng::seed_from_u64(mixed).random_bool(success_rate)
        }
        None => rand::rng().random_bool(success_rate),
    }
}

/// A 64-bit finaliser, so neighbouring ranks and attempts give unrelated seeds.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_of_one_and_zero_are_certain() {
        for rank in 1..50 {
            assert!(decide(None, 1.0, rank, 1));
            assert!(!decide(Some(7), 0.0, rank, 2));
        }
    }

    #[test]
    fn a_seed_fixes_the_outcome_of_each_rank_and_attempt() {
        let first: Vec<bool> = (1..64).map(|rank| decide(Some(42), 0.5, rank, 1)).collect();
        let again: Vec<bool> = (1..64).map(|rank| decide(Some(42), 0.5, rank, 1)).collect();
        assert_eq!(first, again);
        assert!(first.contains(&true) && first.contains(&false));
    }

    #[test]
    fn the_default_rate_succeeds_about_four_times_in_five() {
        let successes = (1..=10_000)
            .filter(|rank| decide(Some(1), 0.8, *rank, 1))
            .count();
        assert!((7_600..=8_400).contains(&successes), "{successes}");
    }

    /// tests/tests/duplicates.rs: seed 3, one attempt at 50 %, six orders — some are paid
    /// and some fail, in every run.
    #[test]
    fn seed_3_pays_some_and_fails_some_of_six_orders() {
        let paid: Vec<bool> = (1..=6).map(|rank| decide(Some(3), 0.5, rank, 1)).collect();
        assert!(paid.contains(&true) && paid.contains(&false), "{paid:?}");
    }

    /// tests/tests/compensation.rs: seed 7, 50 %, eight orders — the first attempt of one
    /// of them is declined, so it needs another attempt.
    #[test]
    fn seed_7_declines_a_first_attempt_among_eight_orders() {
        assert!((1..=8).any(|rank| !decide(Some(7), 0.5, rank, 1)));
    }
}
