//! Removing what a [`TestStack`] made — processes, databases, queues, exchange — at its
//! end, or when a test panicked.

use super::TestStack;
use ::contract::Service;
use common::amqp::topology::Topology;
use sqlx::PgPool;

impl TestStack {
    /// Stops everything and removes the databases, queues and exchange.
    pub async fn cleanup(mut self) {
        self.cleaned = true;
        for service in Service::ALL {
            self.kill(service).await;
        }
        let pools: Vec<PgPool> = self
            .pools
            .lock()
            .expect("not poisoned")
            .drain()
            .map(|(_, p)| p)
            .collect();
        for pool in pools {
            pool.close().await;
        }
        remove_resources(&self.name, &self.topology, &self.amqp_url, &self.postgres).await;
    }
}

impl Drop for TestStack {
    /// A test that panicked still removes its processes, databases and queues.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        for instance in self.instances.values_mut().flatten() {
            let _ = instance.child.kill();
            let _ = instance.child.wait();
        }
        let name = self.name.clone();
        let topology = self.topology.clone();
        let amqp_url = self.amqp_url.clone();
        let postgres = self.postgres.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove_resources(&name, &topology, &amqp_url, &postgres));
            }
        })
        .join();
    }
}

/// Drops the stack's four databases and deletes its queues and exchange, all at once:
/// each `DROP DATABASE` waits for a checkpoint, and drops that run together share one
/// (four one after another took 4 × 1.2 s on a busy machine; together, one such wait).
async fn remove_resources(name: &str, topology: &Topology, amqp_url: &str, postgres: &str) {
    let databases = async {
        let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(Service::ALL.len() as u32)
            .connect(&format!("{postgres}/postgres"))
            .await
        else {
            return;
        };
        let drops = Service::ALL.map(|service| {
            let pool = &pool;
            async move {
                let database = format!("{name}_{}", service.short_name());
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                )))
                .execute(pool)
                .await;
            }
        });
        futures_util::future::join_all(drops).await;
        pool.close().await;
    };
    tokio::join!(
        databases,
        crate::broker::delete_topology(topology, amqp_url)
    );
}
