//! What the authentication tests need of an OpenID provider, made in the test: signing
//! keys (generated per test), tokens minted with `jsonwebtoken`, and a JWKS endpoint whose
//! key set the test changes, takes down, and counts the fetches of — with an OpenID
//! discovery document beside it whose `jwks_uri` the test may point elsewhere.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The `iss` of every test token (`AUTH_ISSUER`).
pub const ISSUER: &str = "https://id.saga.test";
/// The audience the services expect by default.
pub const AUDIENCE: &str = "orders-api";
/// The scope that acts for every customer.
pub const ADMIN_SCOPE: &str = "orders:admin";

/// A key pair of the test's own, as a provider would hold it.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    /// The public key as a JWK (with `kid`, `alg`, `use: sig`).
    pub jwk: Jwk,
    /// The public key as PEM (SPKI), for `AUTH_PUBLIC_KEY`.
    pub public_pem: String,
}

impl SigningKey {
    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Self {
        Self::generate(kid, &rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    }

    /// A fresh Ed25519 key for EdDSA.
    pub fn ed25519(kid: &str) -> Self {
        Self::generate(kid, &rcgen::PKCS_ED25519, Algorithm::EdDSA)
    }

    fn generate(kid: &str, kind: &'static rcgen::SignatureAlgorithm, algorithm: Algorithm) -> Self {
        let pair = rcgen::KeyPair::generate_for(kind).expect("a key pair");
        let private = pair.serialize_pem();
        let encoding = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private.as_bytes()),
            _ => EncodingKey::from_ec_pem(private.as_bytes()),
        }
        .expect("the private key reads back");
        let mut jwk = match algorithm {
            // jsonwebtoken reads only PKCS#8 v1 Ed25519 keys back; rcgen writes v2.
            Algorithm::EdDSA => serde_json::from_value(json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key_raw()),
            }))
            .expect("an OKP JWK"),
            _ => Jwk::from_encoding_key(&encoding, algorithm).expect("a JWK"),
        };
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Self {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    /// Signs `claims` with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` with no `kid` in the header, as a single-key issuer (the dev
    /// launcher) does for services that hold its public key (`AUTH_PUBLIC_KEY`).
    pub fn sign_without_kid(&self, claims: &Value) -> String {
        self.sign_with_header(&Header::new(self.algorithm), claims)
    }

    /// Signs `claims` under a header of the test's choosing.
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("the token signs")
    }

    /// A customer's token, valid for an hour.
    pub fn customer(&self, customer: &str) -> String {
        self.sign(&claims(customer, None))
    }

    /// An `orders:admin` token, valid for an hour.
    pub fn admin(&self, subject: &str) -> String {
        self.sign(&claims(subject, Some(ADMIN_SCOPE)))
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims a provider would issue: `sub`, this issuer and audience, valid from a minute ago
/// for an hour, and `scope` if given.
pub fn claims(subject: &str, scope: Option<&str>) -> Value {
    let mut claims = json!({
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now() - 60,
        "nbf": now() - 60,
        "exp": now() + 3600,
    });
    if let Some(scope) = scope {
        claims["scope"] = json!(scope);
    }
    claims
}

/// A JWKS endpoint the test controls.
#[derive(Clone)]
pub struct JwksServer {
    pub url: String,
    /// `http://127.0.0.1:<port>`: the issuer its discovery document names, at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    state: Arc<JwksState>,
}

struct JwksState {
    document: Mutex<Value>,
    /// The discovery document (`issuer`, `jwks_uri`).
    discovery: Mutex<Value>,
    fetches: AtomicUsize,
    /// When each fetch arrived, in order.
    arrivals: Mutex<Vec<Instant>>,
    down: AtomicBool,
}

impl JwksServer {
    /// Serves `keys` at `http://127.0.0.1:<port>/jwks`.
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the JWKS stub");
        let issuer = format!("http://{}", listener.local_addr().expect("its address"));
        let url = format!("{issuer}/jwks");
        let state = Arc::new(JwksState {
            document: Mutex::new(document(keys)),
            discovery: Mutex::new(json!({"issuer": issuer, "jwks_uri": url})),
            fetches: AtomicUsize::new(0),
            arrivals: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
        });
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(serve))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(serve_discovery),
            )
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, issuer, state }
    }

    /// From now on the discovery document names this `jwks_uri`.
    pub fn point_discovery_at(&self, jwks_uri: &str) {
        self.state.discovery.lock().expect("not poisoned")["jwks_uri"] = json!(jwks_uri);
    }

    /// From now on the endpoint serves these keys.
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.state.document.lock().expect("not poisoned") = document(keys);
    }

    /// Down, it answers every fetch with 503 (and counts it).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// How many times the key set was asked for, answered or not.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// When each fetch so far arrived, oldest first.
    pub fn fetched_at(&self) -> Vec<Instant> {
        self.state.arrivals.lock().expect("not poisoned").clone()
    }
}

fn document(keys: &[&SigningKey]) -> Value {
    serde_json::to_value(JwkSet {
        keys: keys.iter().map(|key| key.jwk.clone()).collect(),
    })
    .expect("a JWKS document")
}

async fn serve_discovery(State(state): State<Arc<JwksState>>) -> Response {
    Json(state.discovery.lock().expect("not poisoned").clone()).into_response()
}

async fn serve(State(state): State<Arc<JwksState>>) -> Response {
    state
        .arrivals
        .lock()
        .expect("not poisoned")
        .push(Instant::now());
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response();
    }
    let document = state.document.lock().expect("not poisoned").clone();
    Json(document).into_response()
}
