//! The saga timeout (CONTRACT §5), triggered by the test instead of raced against the clock:
//! a test that needs orders to time out at a moment of its choosing — while a charge is
//! held in flight, say — runs order-service with [`SAGA_TIMEOUT_SECS`] and then makes those
//! orders old ([`TestStack::expire`]). The sweeper cancels them at its next look.

use crate::stack::TestStack;
use ::contract::Service;

/// A saga timeout for tests that trigger it: long enough that it never fires by itself
/// while the test sets the scene on a loaded machine (placing orders and seeing their
/// charges in flight takes well under a second when idle, a few under a CPU hog), short
/// enough that the sweeper — which looks every quarter of it — cancels an expired order
/// within 3 s.
pub const SAGA_TIMEOUT_SECS: &str = "12";

impl TestStack {
    /// Makes `orders` older than any saga timeout: their `created_at` in order-service's
    /// database goes back a day, so the sweeper cancels the ones still `PENDING` at its next
    /// look. The API shows the earlier `created_at`; nothing else changes.
    pub async fn expire(&self, orders: &[String]) {
        let ids: Vec<uuid::Uuid> = orders
            .iter()
            .map(|id| id.parse().expect("an order id"))
            .collect();
        let expired = sqlx::query(
            "UPDATE orders SET created_at = created_at - interval '1 day' WHERE id = ANY($1)",
        )
        .bind(&ids)
        .execute(&self.db(Service::Order).await)
        .await
        .expect("the orders can be aged");
        assert_eq!(expired.rows_affected(), ids.len() as u64, "unknown orders");
    }
}
