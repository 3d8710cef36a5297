//! The simulated payment provider: each attempt succeeds with `PAYMENT_SUCCESS_RATE`.
//! With `PAYMENT_SEED` the outcome of attempt *n* for an order depends only on the seed,
//! the order and *n*, so runs are reproducible whatever the timing.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Gateway {
    pub success_rate: f64,
    pub seed: Option<u64>,
}

impl Gateway {
    /// Tries to charge `order_id`; `attempt` counts from 1.
    pub fn charge(&self, order_id: Uuid, attempt: u32) -> bool {
        match self.seed {
            Some(seed) => {
                let bits = order_id.as_u128();
                let order = (bits >> 64) as u64 ^ bits as u64;
                let mixed = seed
                    ^ order.rotate_left(17)
                    ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                StdRng::seed_from_u64(mixed).random_bool(self.success_rate)
            }
            None => rand::rng().random_bool(self.success_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_of_one_and_zero_are_certain() {
        let always = Gateway {
            success_rate: 1.0,
            seed: None,
        };
        let never = Gateway {
            success_rate: 0.0,
            seed: Some(7),
        };
        for attempt in 1..50 {
            assert!(always.charge(Uuid::new_v4(), attempt));
            assert!(!never.charge(Uuid::new_v4(), attempt));
        }
    }

    #[test]
    fn a_seed_makes_outcomes_reproducible() {
        let gateway = Gateway {
            success_rate: 0.5,
            seed: Some(42),
        };
        let orders: Vec<Uuid> = (0..64).map(|_| Uuid::new_v4()).collect();
        let first: Vec<bool> = orders.iter().map(|o| gateway.charge(*o, 1)).collect();
        let again: Vec<bool> = orders.iter().map(|o| gateway.charge(*o, 1)).collect();
        assert_eq!(first, again);
        assert!(first.contains(&true) && first.contains(&false));
    }

    #[test]
    fn the_default_rate_succeeds_about_four_times_in_five() {
        let gateway = Gateway {
            success_rate: 0.8,
            seed: Some(1),
        };
        let successes = (0..10_000)
            .filter(|_| gateway.charge(Uuid::new_v4(), 1))
            .count();
        assert!((7_600..=8_400).contains(&successes), "{successes}");
    }
}
