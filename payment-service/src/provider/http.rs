//! A card processor's HTTP API: `POST /v1/charges` and `POST /v1/refunds` with an
//! `Idempotency-Key` header, amounts in cents. Only 201 and 402 are outcomes; every other
//! answer, a timeout or a cut connection leaves the outcome unknown.

use super::{ChargeAnswer, ChargeRequest, RefundAnswer, RefundRequest, Unknown};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

pub struct HttpProvider {
    client: reqwest::Client,
    /// Without a trailing slash.
    base_url: String,
}

impl HttpProvider {
    /// `timeout` bounds each request as a whole: past it, the outcome is unknown.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn charge(&self, request: &ChargeRequest) -> ChargeAnswer {
        let body = json!({
            "order_id": request.order_id,
            "amount": request.amount.cents(),
            "currency": "usd",
        });
        match self.post("/v1/charges", &request.key, &body).await {
            Ok((status, answer)) => classify_charge(status, &answer),
            Err(unknown) => ChargeAnswer::Unknown(unknown),
        }
    }

    pub async fn refund(&self, request: &RefundRequest) -> RefundAnswer {
        let body = json!({"charge_id": request.charge_id, "amount": request.amount.cents()});
        match self.post("/v1/refunds", &request.key, &body).await {
            Ok((status, answer)) => classify_refund(status, &answer),
            Err(unknown) => RefundAnswer::Unknown(unknown),
        }
    }

    /// Sends one request; a transport failure (timeout, refused or cut connection, an
    /// unreadable body) is an unknown outcome.
    async fn post(&self, path: &str, key: &str, body: &Value) -> Result<(u16, Value), Unknown> {
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .map_err(|error| Unknown::new(describe(error)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| Unknown::new(describe(error)))?;
        Ok((
            status.as_u16(),
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

/// A transport error in a few words, without the URL's query or credentials.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "no answer in time"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut off"
    } else {
        "the request failed"
    };
    format!("{kind}: {}", error.without_url())
}

/// 201 succeeded, 402 declined, 422 our bug, anything else unknown.
pub fn classify_charge(status: u16, body: &Value) -> ChargeAnswer {
    match StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR) {
        StatusCode::CREATED => match body["id"].as_str() {
            Some(id) if body["status"] == "succeeded" => ChargeAnswer::Succeeded {
                charge_id: id.to_owned(),
            },
            _ => ChargeAnswer::Unknown(unreadable(status, body)),
        },
        StatusCode::PAYMENT_REQUIRED => ChargeAnswer::Declined {
            reason: body["reason"].as_str().unwrap_or("declined").to_owned(),
        },
        _ => ChargeAnswer::Unknown(not_an_outcome(status, body)),
    }
}

/// 201 succeeded, 422 our bug, anything else unknown (a refund is never declined).
pub fn classify_refund(status: u16, body: &Value) -> RefundAnswer {
    match (status, body["id"].as_str()) {
        (201, Some(id)) if body["status"] == "succeeded" => RefundAnswer::Succeeded {
            refund_id: id.to_owned(),
        },
        (201, _) => RefundAnswer::Unknown(unreadable(status, body)),
        _ => RefundAnswer::Unknown(not_an_outcome(status, body)),
    }
}

fn unreadable(status: u16, body: &Value) -> Unknown {
    Unknown {
        reason: format!("unreadable {status} answer: {}", clip(body)),
        client_bug: true,
    }
}

fn not_an_outcome(status: u16, body: &Value) -> Unknown {
    Unknown {
        reason: format!("provider answered {status}: {}", clip(body)),
        client_bug: status == 422,
    }
}

/// At most 200 characters of a body, for a log line.
fn clip(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_201_and_402_are_outcomes_of_a_charge() {
        let ok = json!({"id": "ch_1", "status": "succeeded"});
        assert_eq!(
            classify_charge(201, &ok),
            ChargeAnswer::Succeeded {
                charge_id: "ch_1".into()
            }
        );
        let declined = json!({"id": "ch_2", "status": "declined", "reason": "insufficient funds"});
        assert_eq!(
            classify_charge(402, &declined),
            ChargeAnswer::Declined {
                reason: "insufficient funds".into()
            }
        );
        for status in [200, 400, 404, 409, 429, 500, 502, 503, 504] {
            match classify_charge(status, &json!({"detail": "x"})) {
                ChargeAnswer::Unknown(unknown) => assert!(!unknown.client_bug, "{status}"),
                other => panic!("{status} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_422_is_our_bug_and_never_an_outcome() {
        let answer = classify_charge(422, &json!({"detail": "key reused with another body"}));
        assert!(matches!(
            answer,
            ChargeAnswer::Unknown(Unknown {
                client_bug: true,
                ..
            })
        ));
        let answer = classify_refund(422, &json!({"detail": "no such charge"}));
        assert!(matches!(
            answer,
            RefundAnswer::Unknown(Unknown {
                client_bug: true,
                ..
            })
        ));
    }

    #[test]
    fn a_201_without_an_id_is_not_taken_for_a_success() {
        assert!(matches!(
            classify_charge(201, &json!("ok")),
            ChargeAnswer::Unknown(_)
        ));
        assert!(matches!(
            classify_refund(201, &json!({})),
            RefundAnswer::Unknown(_)
        ));
        assert_eq!(
            classify_refund(201, &json!({"id": "re_1", "status": "succeeded"})),
            RefundAnswer::Succeeded {
                refund_id: "re_1".into()
            }
        );
    }
}
