//! PostgreSQL refusing work for lack of resources (class 53: too many connections, out of
//! memory, disk full…) is an outage to wait out, not a sign that the message is poison:
//! messages are held, replicas keep trying to start, nothing is dead-lettered, and every
//! saga ends once the database has room again.

use saga_tests::stack::postgres_url;
use saga_tests::{Service, TestStack, eventually};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;

async fn admin() -> PgPool {
    PgPool::connect(&format!("{}/postgres", postgres_url()))
        .await
        .expect("PostgreSQL is reachable")
}

async fn run(pool: &PgPool, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .expect("the admin statement runs");
}

/// A login role for the services; dropped when the test ends, even by a panic (after the
/// stack, which must drop the databases the role owns first).
struct Role(String);

impl Drop for Role {
    fn drop(&mut self) {
        let sql = format!("DROP ROLE IF EXISTS {}", self.0);
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(async {
                    let admin = admin().await;
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                });
            }
        })
        .join();
    }
}

/// Whether an inventory-service process is waiting for PostgreSQL at startup.
fn waiting_replica(log_dir: &std::path::Path) -> Result<(), String> {
    let entries = std::fs::read_dir(log_dir).map_err(|error| error.to_string())?;
    let waiting = entries.flatten().any(|entry| {
        entry
            .file_name()
            .to_string_lossy()
            .starts_with("inventory-")
            && std::fs::read_to_string(entry.path())
                .is_ok_and(|log| log.contains("PostgreSQL is not reachable yet"))
    });
    waiting
        .then_some(())
        .ok_or_else(|| "no replica waits yet".to_owned())
}

/// Waits until a service's log contains `text`.
async fn logged(stack: &TestStack, service: Service, text: &str) {
    eventually(
        &format!("{} to log {text:?}", service.name()),
        Duration::from_secs(30),
        || async {
            if stack.logs(service).contains(text) {
                Ok(())
            } else {
                Err("not yet".to_owned())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn services_whose_role_is_at_its_connection_limit_wait_and_every_saga_ends_once_it_is_lifted()
{
    let admin = admin().await;
    let role = Role(format!(
        "r{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    run(&admin, format!("CREATE ROLE {} LOGIN CREATEDB", role.0)).await;
    let role = &role.0;
    let mut stack = TestStack::builder()
        .env("PAYMENT_SUCCESS_RATE", "1")
        .env("DATABASE_POOL_SIZE", "3")
        .database_user(role)
        .start()
        .await;

    // Payment is frozen for a moment so that every saga is still in flight at the strike.
    stack.pause(Service::Payment);
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(stack.place_order("c", &[("product-A", 1)], 3.0).await);
    }
    // The role reaches its limit: the test takes one connection, the limit becomes one,
    // and every service loses its connections and cannot open new ones.
    let own_url = format!(
        "{}/postgres",
        postgres_url().replacen("postgres@", &format!("{role}@"), 1)
    );
    let mut hog = PgConnection::connect(&own_url)
        .await
        .expect("a connection as the role");
    let hog_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut hog)
        .await
        .expect("its pid");
    run(&admin, format!("ALTER ROLE {role} CONNECTION LIMIT 1")).await;
    run(
        &admin,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE usename = '{role}' AND pid <> {hog_pid}"
        ),
    )
    .await;
    // order-service cannot answer now; its database can (the test is superuser).
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'PENDING'")
        .fetch_one(&stack.db(Service::Order).await)
        .await
        .expect("the orders can be counted");
    assert_eq!(pending, 8, "every saga is in flight when the limit strikes");
    stack.resume(Service::Payment);

    // Payment, awake again, has work and no connection: it holds its messages.
    logged(&stack, Service::Payment, "database unreachable; holding").await;

    // A replica started now must wait for a connection, not give up; once it says it
    // waits, the limit is lifted.
    let log_dir = stack.log_dir().to_owned();
    let lift = async {
        eventually(
            "the new replica to wait for PostgreSQL",
            Duration::from_secs(30),
            || async { waiting_replica(&log_dir) },
        )
        .await;
        hog.close().await.expect("the held connection closes");
        run(&admin, format!("ALTER ROLE {role} CONNECTION LIMIT -1")).await;
    };
    tokio::join!(stack.add_replica(Service::Inventory), lift);
    for order in &orders {
        assert_eq!(
            stack.final_order(order["id"].as_str().unwrap()).await["status"],
            "COMPLETED"
        );
    }
    stack.assert_invariants().await;
    stack.cleanup().await;
    admin.close().await;
}

#[tokio::test]
async fn a_class_53_error_mid_transaction_holds_the_message_instead_of_dead_lettering_it() {
    let stack = TestStack::start().await;
    let inventory = stack.db(Service::Inventory).await;
    sqlx::raw_sql(
        "CREATE FUNCTION no_memory() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'out of memory (injected)' USING ERRCODE = '53200'; END $$;
         CREATE TRIGGER no_memory BEFORE INSERT ON reservations FOR EACH ROW EXECUTE FUNCTION no_memory();",
    )
    .execute(&inventory)
    .await
    .unwrap();

    let order = stack.place_order("c", &[("product-A", 1)], 3.0).await;
    let id = order["id"].as_str().unwrap();
    // Held again and again, far past the test stack's three short retries (100 + 200 +
    // 400 ms) after which a failing message would be dead-lettered.
    eventually(
        "inventory-service to hold the message five times",
        Duration::from_secs(30),
        || async {
            match stack
                .logs(Service::Inventory)
                .matches("database unreachable; holding")
                .count()
            {
                held if held >= 5 => Ok(()),
                held => Err(format!("held {held} times")),
            }
        },
    )
    .await;
    assert_eq!(stack.order(id).await["status"], "PENDING");
    let letters: serde_json::Value = stack
        .admin(reqwest::Method::GET, Service::Inventory, "/admin/dlq")
        .send()
        .await
        .expect("inventory-service answers")
        .json()
        .await
        .expect("a JSON body");
    assert_eq!(letters["depth"], 0, "{letters}");

    sqlx::raw_sql("DROP TRIGGER no_memory ON reservations")
        .execute(&inventory)
        .await
        .unwrap();
    assert_eq!(stack.final_order(id).await["status"], "COMPLETED");
    stack.assert_invariants().await;
    stack.cleanup().await;
}
