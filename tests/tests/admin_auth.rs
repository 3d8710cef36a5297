//! Admin routes need the admin token (CONTRACT §8), a placeholder token from the docs or
//! the shipped manifests stops every service, and no log, error or `/ready` reason shows a
//! password from `DATABASE_URL` or `AMQP_URL`.

use reqwest::{Method, StatusCode};
use saga_tests::stack::{self, TEST_ADMIN_TOKEN};
use saga_tests::{Service, TestStack, eventually};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_routes_refuse_callers_without_the_token_and_forms() {
    let stack = TestStack::start().await;
    let put = |token: Option<&str>| {
        let request = stack
            .http
            .put(stack.url(Service::Inventory, "/api/inventory/product-A"))
            .json(&json!({"available": 999}));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    for token in [None, Some("wrong-token-0123456789abcdef")] {
        let (status, body) = answer(put(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert!(body["detail"].is_string(), "{body}");
        for service in Service::ALL {
            let mut request = stack.http.get(stack.url(service, "/admin/dlq"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let (status, body) = answer(request).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{}: {body}",
                service.name()
            );
            assert!(body["detail"].is_string(), "{body}");
        }
    }
    let (_, product) = stack
        .get_json(Service::Inventory, "/api/inventory/product-A")
        .await;
    assert_eq!(product["available"], 10, "a refused PUT changed the stock");

    // A cross-site form can carry neither a JSON content type nor a custom header.
    let form = stack
        .http
        .post(stack.url(Service::Payment, "/admin/dlq/replay"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1");
    let (status, body) = answer(form).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body["detail"].is_string(), "{body}");

    // With the token, they work.
    let (status, body) = answer(put(Some(TEST_ADMIN_TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["available"], 999);
    let (status, body) = answer(stack.admin(Method::GET, Service::Order, "/admin/dlq")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["depth"], 0);
    let (status, body) =
        answer(stack.admin(Method::POST, Service::Payment, "/admin/dlq/replay")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["replayed"], 0);
    stack.cleanup().await;
}

#[tokio::test]
async fn without_an_admin_token_admin_routes_are_off() {
    let stack = TestStack::builder()
        .only(&[Service::Inventory])
        .env("ADMIN_TOKEN", "")
        .start()
        .await;
    for request in [
        stack
            .admin(Method::PUT, Service::Inventory, "/api/inventory/product-A")
            .json(&json!({"available": 1})),
        stack.admin(Method::GET, Service::Inventory, "/admin/dlq"),
        stack.admin(Method::POST, Service::Inventory, "/admin/dlq/replay"),
    ] {
        let (status, body) = answer(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["detail"], "admin routes are off: set ADMIN_TOKEN");
    }
    // Reading stock is not an admin route.
    let (status, _) = stack
        .get_json(Service::Inventory, "/api/inventory/product-A")
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.cleanup().await;
}

#[tokio::test]
async fn an_operator_can_discard_one_dead_letter_and_keep_the_others() {
    let stack = TestStack::start().await;
    let json = lapin::BasicProperties::default().with_content_type("application/json".into());
    for id in ["poison-1", "poison-2"] {
        stack
            .broker
            .publish(
                "order.created",
                b"not json at all",
                json.clone().with_message_id(id.into()),
            )
            .await;
    }
    let depth = || async {
        let (status, body) =
            answer(stack.admin(Method::GET, Service::Inventory, "/admin/dlq")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    eventually("two dead letters", Duration::from_secs(30), || async {
        match depth().await["depth"].as_u64() {
            Some(2) => Ok(()),
            other => Err(format!("depth {other:?}")),
        }
    })
    .await;

    let discard = |id: &str| {
        stack
            .admin(Method::POST, Service::Inventory, "/admin/dlq/discard")
            .json(&json!({ "message_id": id }))
    };
    let (status, body) = answer(
        stack
            .http
            .post(stack.url(Service::Inventory, "/admin/dlq/discard"))
            .json(&json!({"message_id": "poison-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = answer(discard("no-such-message")).await;
    assert_eq!(
        (status, &body["discarded"]),
        (StatusCode::OK, &json!(0)),
        "{body}"
    );
    let (status, body) = answer(discard("poison-1")).await;
    assert_eq!(
        (status, &body["discarded"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );

    let left = depth().await;
    assert_eq!(left["depth"], 1, "{left}");
    assert_eq!(left["messages"][0]["message_id"], "poison-2", "{left}");
    let mut stack = stack;
    stack
        .expected_dead_letters
        .insert(Service::Inventory, vec!["poison-2".to_owned()]);
    stack.assert_invariants().await;
    stack.cleanup().await;
}

const DB_SECRET: &str = "db-Pa55word-SECRET";
const MQ_SECRET: &str = "mq-Pa55word-SECRET";

/// Runs order-service with these variables, its output in a file; returns the child and
/// the file's path.
fn run_order_service(
    name: &str,
    vars: &[(&str, String)],
) -> (std::process::Child, std::path::PathBuf) {
    stack::ensure_built();
    let log = std::env::temp_dir().join(format!("{name}-{}.log", uuid::Uuid::new_v4().simple()));
    let file = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(devstack::binary("order-service").unwrap());
    command
        .env_clear()
        .env("LOG_FORMAT", "json")
        .env(
            "AMQP_EXCHANGE",
            format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        )
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    for (key, value) in vars {
        command.env(key, value);
    }
    (command.spawn().expect("order-service starts"), log)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn passwords_in_urls_never_reach_logs_errors_or_ready() {
    // A URL that does not parse: the service stops at once, naming the variable.
    let (mut child, log) = run_order_service(
        "bad-url",
        &[(
            "DATABASE_URL",
            format!("postgres://postgres:{DB_SECRET}@127.0.0.1:5432/"),
        )],
    );
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(
        !text.contains(DB_SECRET),
        "the password was printed: {text}"
    );

    // PostgreSQL is unreachable: the service retries and says so.
    let (mut child, log) = run_order_service(
        "no-db",
        &[
            (
                "DATABASE_URL",
                format!("postgres://postgres:{DB_SECRET}@127.0.0.1:1/x_db"),
            ),
            ("HTTP_ADDR", format!("127.0.0.1:{}", free_port())),
        ],
    );
    eventually("a retry to be logged", Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("not reachable")
            .then_some(text)
            .ok_or("no retry yet".to_owned())
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(DB_SECRET),
        "the password was printed: {text}"
    );

    // RabbitMQ refuses the password: logs and /ready say so, without it.
    let database = format!(
        "t{}_order",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let port = free_port();
    let amqp = stack::amqp_url();
    let (_, host) = amqp
        .split_once('@')
        .expect("the test AMQP URL has credentials");
    let database_url = format!("{}/{database}", stack::postgres_url());
    let (mut child, log) = run_order_service(
        "bad-mq",
        &[
            (
                "DATABASE_URL",
                database_url.replacen("postgres@", &format!("postgres:{DB_SECRET}@"), 1),
            ),
            ("AMQP_URL", format!("amqp://guest:{MQ_SECRET}@{host}")),
            ("HTTP_ADDR", format!("127.0.0.1:{port}")),
        ],
    );
    let http = reqwest::Client::new();
    let ready = eventually(
        "/ready to explain the broker",
        Duration::from_secs(60),
        || async {
            let response = http
                .get(format!("http://127.0.0.1:{port}/ready"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let body = response.text().await.map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if body.contains("RabbitMQ") && text.contains("cannot connect to RabbitMQ") {
                Ok(body)
            } else {
                Err(body)
            }
        },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [DB_SECRET, MQ_SECRET] {
        assert!(!text.contains(secret), "the password was printed: {text}");
        assert!(
            !ready.contains(secret),
            "/ready shows the password: {ready}"
        );
    }
    if let Ok(pool) = sqlx::PgPool::connect(&format!("{}/postgres", stack::postgres_url())).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
    }
}

/// `--check-config` of `service` with only these variables: its exit code and output.
fn check_config(service: Service, vars: &[(&str, &str)]) -> (Option<i32>, String) {
    stack::ensure_built();
    let output = Command::new(devstack::binary(service.name()).unwrap())
        .arg("--check-config")
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn a_placeholder_admin_token_stops_every_service_naming_the_variable() {
    // What deploy/ and docker-compose shipped, and the shapes placeholders take.
    let placeholders = [
        "replace-me-with-openssl-rand-hex-32",
        "change-me-admin-token",
        "changeme-changeme-changeme",
        "REPLACE_ME_WITH_A_SECRET",
    ];
    for service in Service::ALL {
        for token in placeholders {
            let (code, output) = check_config(service, &[("ADMIN_TOKEN", token)]);
            assert_eq!(code, Some(2), "{} took {token}: {output}", service.name());
            assert!(output.contains("ADMIN_TOKEN"), "{output}");
            assert!(
                !output.contains(token),
                "the placeholder is echoed: {output}"
            );
        }
        let (code, output) = check_config(
            service,
            &[("ADMIN_TOKEN", "7d1c0b9e5f3a48c2a6e4b8d0f2c4e6a8")],
        );
        assert_eq!(code, Some(0), "{}: {output}", service.name());
    }
}

/// The operator's console (CONTRACT §16): its routes are admin routes like the others.
#[tokio::test]
async fn the_operator_console_routes_are_admin_routes() {
    let stack = TestStack::builder()
        .only(&[Service::Order, Service::Inventory])
        .start()
        .await;
    let routes = [
        (Method::GET, Service::Order, "/admin/dead-letters/groups"),
        (
            Method::POST,
            Service::Order,
            "/admin/dead-letters/groups/0123456789abcdef/replay",
        ),
        (
            Method::POST,
            Service::Order,
            "/admin/dead-letters/groups/0123456789abcdef/discard",
        ),
        (
            Method::POST,
            Service::Order,
            "/admin/dead-letters/inventory/some-id/edit",
        ),
        (Method::GET, Service::Order, "/admin/operator-log"),
        (Method::GET, Service::Inventory, "/admin/operator-log"),
    ];
    for (method, service, path) in &routes {
        let url = stack.url(*service, path);
        let (status, body) = answer(stack.http.request(method.clone(), &url)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        let wrong = stack
            .http
            .request(method.clone(), &url)
            .bearer_auth("wrong-token-0123456789abcdef")
            .header("x-requested-by", "t");
        let (status, body) = answer(wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        if *method == Method::POST {
            let form = stack
                .http
                .post(&url)
                .bearer_auth(TEST_ADMIN_TOKEN)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("body=1");
            let (status, body) = answer(form).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}: {body}");
        }
    }
    // With the token: nothing to group, no such group or letter, an empty log.
    let (status, body) = answer(stack.admin(Method::GET, Service::Order, routes[0].2)).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = answer(stack.admin(Method::POST, Service::Order, routes[1].2)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let edit = stack
        .admin(Method::POST, Service::Order, routes[3].2)
        .json(&json!({"body": {}}));
    let (status, body) = answer(edit).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for (_, service, path) in &routes[4..] {
        let (status, body) = answer(stack.admin(Method::GET, *service, path)).await;
        assert_eq!((status, body), (StatusCode::OK, json!([])), "{path}");
    }
    stack.cleanup().await;
}

/// With authentication on, an `orders:admin` JWT is an admin too, and the log names its
/// `sub`; a customer's token is not.
#[tokio::test]
async fn an_orders_admin_token_acts_as_its_subject() {
    use saga_tests::auth::{JwksServer, SigningKey};
    let key = SigningKey::es256("console");
    let jwks = JwksServer::start(&[&key]).await;
    let stack = TestStack::builder()
        .only(&[Service::Order, Service::Inventory])
        .authenticated(&jwks.url, &key.admin("operator-ada"))
        .start()
        .await;
    stack.all_ready().await;
    let put = |token: String| {
        stack
            .http
            .put(stack.url(Service::Inventory, "/api/inventory/product-B"))
            .bearer_auth(token)
            .json(&json!({"available": 42}))
    };
    // Setting stock keeps to the shared token (CONTRACT §12): no JWT is it.
    let (status, body) = answer(put(key.customer("customer-1"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = answer(put(key.admin("operator-ada"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The console's routes take an orders:admin token, and log its subject (§16).
    let replay = stack
        .http
        .post(stack.url(Service::Order, "/admin/dead-letters/inventory/replay"))
        .bearer_auth(key.admin("operator-ada"))
        .json(&json!({}));
    let (status, body) = answer(replay).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let log = stack
        .http
        .get(stack.url(Service::Order, "/admin/operator-log"))
        .bearer_auth(key.admin("operator-ada"))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), StatusCode::OK);
    let log: Value = log.json().await.unwrap();
    assert_eq!(log[0]["actor"], "operator-ada", "{log}");
    assert!(
        log[0]["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("replay")),
        "{log}"
    );
    // The shared token sets stock, and is named as such, with the stock it replaced.
    let (status, body) = answer(put(TEST_ADMIN_TOKEN.to_owned())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let log: Value = stack
        .http
        .get(stack.url(Service::Order, "/admin/operator-log"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log[0]["actor"], "admin-token", "{log}");
    assert_eq!(log[0]["action"], "restock", "{log}");
    assert_eq!(log[0]["detail"]["previous"]["available"], 5, "{log}");
    stack.cleanup().await;
}
