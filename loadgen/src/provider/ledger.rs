//! What the benchmark provider remembers: the answer of every idempotency key, given again
//! to every repeat with the same body, and refused (422) for a repeat with another body —
//! CONTRACT §7 as a card processor keeps it. Everything lives in memory; a restart forgets.

use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The body of `POST /v1/charges`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChargeBody {
    pub order_id: String,
    pub amount: i64,
    pub currency: String,
}

/// The body of `POST /v1/refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundBody {
    pub charge_id: String,
    pub amount: i64,
}

/// A request as the ledger compares repeats of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Charge(ChargeBody),
    Refund(RefundBody),
}

/// An HTTP status and its JSON body.
pub type Answer = (u16, Value);

/// The stored answer of one key, with the request it answered.
struct Stored {
    request: Request,
    answer: Answer,
}

/// What the provider did, for `GET /stats` and the bench scripts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub charges: u64,
    pub declines: u64,
    pub refunds: u64,
    /// Repeats of a key answered with its stored answer.
    pub repeats: u64,
    /// Requests refused with 422 (a key reused with another body, a refund of nothing).
    pub refused: u64,
}

#[derive(Default)]
pub struct Ledger {
    /// The chance that a new charge is declined (0 never, 1 always).
    decline_rate: f64,
    answers: HashMap<String, Stored>,
    /// Succeeded charges by id: their amounts, which a refund may not exceed.
    charged: HashMap<String, i64>,
    /// Ids given so far; ids are `ch_bench_<n>` and `re_bench_<n>`.
    issued: u64,
    counts: Counts,
}

impl Ledger {
    pub fn new(decline_rate: f64) -> Self {
        Self {
            decline_rate,
            ..Self::default()
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Charges `body` under `key`, or gives the key's stored answer again.
    pub fn charge(&mut self, key: &str, body: ChargeBody) -> Answer {
        let request = Request::Charge(body);
        if let Some(answer) = self.repeat(key, &request) {
            return answer;
        }
        let Request::Charge(body) = &request else {
            unreachable!("built above")
        };
        let id = self.next_id("ch");
        let declined = match self.decline_rate {
            rate if rate <= 0.0 => false,
            rate if rate >= 1.0 => true,
            rate => rand::rng().random_bool(rate),
        };
        let answer = if declined {
            self.counts.declines += 1;
            (
                402,
                json!({"id": id, "status": "declined", "reason": "card declined (benchmark provider)"}),
            )
        } else {
            self.counts.charges += 1;
            self.charged.insert(id.clone(), body.amount);
            (201, json!({"id": id, "status": "succeeded"}))
        };
        self.store(key, request, answer)
    }

    /// Refunds the charge `body` names under `key`, or gives the key's stored answer again.
    /// A refund of no succeeded charge, or of more than it took, is refused (422) and not
    /// stored: the request is wrong, not the key.
    pub fn refund(&mut self, key: &str, body: RefundBody) -> Answer {
        let request = Request::Refund(body);
        if let Some(answer) = self.repeat(key, &request) {
            return answer;
        }
        let Request::Refund(body) = &request else {
            unreachable!("built above")
        };
        match self.charged.get(&body.charge_id) {
            Some(taken) if *taken >= body.amount && body.amount > 0 => {}
            _ => {
                self.counts.refused += 1;
                return (422, json!({"error": "no succeeded charge of that amount"}));
            }
        }
        self.counts.refunds += 1;
        let id = self.next_id("re");
        self.store(
            key,
            request,
            (201, json!({"id": id, "status": "succeeded"})),
        )
    }

    /// The stored answer of `key` if it was used before: the same for the same request, a
    /// 422 for another.
    fn repeat(&mut self, key: &str, request: &Request) -> Option<Answer> {
        let stored = self.answers.get(key)?;
        if stored.request == *request {
            self.counts.repeats += 1;
            Some(stored.answer.clone())
        } else {
            self.counts.refused += 1;
            Some((
                422,
                json!({"error": "idempotency key reused with another body"}),
            ))
        }
    }

    fn store(&mut self, key: &str, request: Request, answer: Answer) -> Answer {
        let stored = Stored {
            request,
            answer: answer.clone(),
        };
        self.answers.insert(key.to_owned(), stored);
        answer
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.issued += 1;
        format!("{prefix}_bench_{}", self.issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(order: &str, amount: i64) -> ChargeBody {
        ChargeBody {
            order_id: order.into(),
            amount,
            currency: "usd".into(),
        }
    }

    #[test]
    fn a_repeated_key_gets_the_same_answer_and_charges_once() {
        let mut ledger = Ledger::new(0.0);
        let first = ledger.charge("o1:1", charge("o1", 1500));
        assert_eq!(first.0, 201);
        assert_eq!(first.1["status"], "succeeded");
        assert_eq!(ledger.charge("o1:1", charge("o1", 1500)), first);
        let other = ledger.charge("o1:2", charge("o1", 1500));
        assert_ne!(other.1["id"], first.1["id"], "a new key is a new charge");
        let counts = ledger.counts();
        assert_eq!((counts.charges, counts.repeats), (2, 1));
    }

    #[test]
    fn a_key_reused_with_another_body_is_refused() {
        let mut ledger = Ledger::new(0.0);
        let first = ledger.charge("o1:1", charge("o1", 1500));
        assert_eq!(ledger.charge("o1:1", charge("o1", 1600)).0, 422);
        assert_eq!(ledger.charge("o1:1", charge("o2", 1500)).0, 422);
        // The stored answer still holds for the request it answered.
        assert_eq!(ledger.charge("o1:1", charge("o1", 1500)), first);
        assert_eq!(ledger.counts().refused, 2);
    }

    #[test]
    fn a_decline_rate_of_one_declines_every_new_charge_and_repeats_the_decline() {
        let mut ledger = Ledger::new(1.0);
        let declined = ledger.charge("o1:1", charge("o1", 900));
        assert_eq!(declined.0, 402);
        assert_eq!(declined.1["status"], "declined");
        assert_eq!(ledger.charge("o1:1", charge("o1", 900)), declined);
        let refund = RefundBody {
            charge_id: declined.1["id"].as_str().unwrap().into(),
            amount: 900,
        };
        assert_eq!(
            ledger.refund("o1:refund", refund).0,
            422,
            "nothing to give back"
        );
    }

    #[test]
    fn a_refund_gives_back_a_succeeded_charge_once_per_key() {
        let mut ledger = Ledger::new(0.0);
        let charged = ledger.charge("o1:1", charge("o1", 700));
        let charge_id = charged.1["id"].as_str().unwrap().to_owned();
        let body = |amount| RefundBody {
            charge_id: charge_id.clone(),
            amount,
        };
        assert_eq!(
            ledger.refund("o1:refund", body(800)).0,
            422,
            "more than taken"
        );
        let refunded = ledger.refund("o1:refund", body(700));
        assert_eq!(refunded.0, 201);
        assert_eq!(ledger.refund("o1:refund", body(700)), refunded);
        assert_eq!(ledger.refund("o1:refund", body(600)).0, 422);
        assert_eq!(ledger.counts().refunds, 1);
    }
}
