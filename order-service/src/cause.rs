//! One cause, one group (CONTRACT §16): a dead letter's error text with what differs from
//! message to message — UUIDs, ids and numbers, quoted values — masked, so that the
//! hundreds of failures of one outage read the same; and the short, URL-safe id of the
//! group a service, event type and masked error make.

/// What a masked id or number reads as.
const MASKED: &str = "#";
/// What a masked quoted value reads as, between its quotes.
const MASKED_QUOTE: &str = "…";

/// `error` with every quoted value (`"…"`, `` `…` ``, `'…'` after a non-letter) emptied
/// to `…` and every word that holds a digit (a UUID, `order-17`, `42`, `1.5`) made `#`.
pub fn mask(error: &str) -> String {
    let chars: Vec<char> = error.chars().collect();
    let mut masked = String::with_capacity(error.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(end) = quote_end(&chars, i) {
            masked.push(c);
            masked.push_str(MASKED_QUOTE);
            masked.push(c);
            i = end + 1;
        } else if is_word(c) {
            let start = i;
            while i < chars.len() && (is_word(chars[i]) || is_decimal_point(&chars, i)) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word.chars().any(|c| c.is_ascii_digit()) {
                masked.push_str(MASKED);
            } else {
                masked.push_str(&word);
            }
        } else {
            masked.push(c);
            i += 1;
        }
    }
    masked
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// A `.` between two digits belongs to the number (`1.5`), not the sentence.
fn is_decimal_point(chars: &[char], i: usize) -> bool {
    chars[i] == '.'
        && i > 0
        && chars[i - 1].is_ascii_digit()
        && chars.get(i + 1).is_some_and(char::is_ascii_digit)
}

/// Where the quoted value opening at `start` closes, if `start` opens one. An apostrophe
/// opens one only at a word's start and closes it only at a word's end, so "can't" is no
/// quote.
fn quote_end(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    if !matches!(quote, '"' | '`' | '\'') {
        return None;
    }
    let apostrophe = quote == '\'';
    if apostrophe && start > 0 && chars[start - 1].is_alphanumeric() {
        return None;
    }
    (start + 1..chars.len()).find(|&end| {
        chars[end] == quote
            && chars[end - 1] != '\\'
            && (!apostrophe || !chars.get(end + 1).is_some_and(|c| c.is_alphanumeric()))
    })
}

/// The group of a service's dead letters of `event_type` that failed with `masked_error`:
/// 16 hex digits of a hash of the three, stable across processes and restarts.
pub fn group_id(service: &str, event_type: &str, masked_error: &str) -> String {
    let key = format!("{service}\u{0}{event_type}\u{0}{masked_error}");
    let tag = common::http::conditional::strong_tag(key.as_bytes());
    tag.trim_matches('"')[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_numbers_and_quoted_values_are_masked() {
        let a = "error returned from database: injected failure for order \
                 3f0c2a1e-8b6d-4d3a-9a55-0b6f3b1f2e10 (attempt 4, 1.5 s) \"product-A\"";
        let b = "error returned from database: injected failure for order \
                 77aa2a1e-0000-4d3a-9a55-0b6f3b1f2e99 (attempt 12, 30.25 s) \"customer 9\"";
        assert_eq!(mask(a), mask(b));
        assert_eq!(
            mask(a),
            "error returned from database: injected failure for order # (attempt #, # s) \"…\""
        );
    }

    #[test]
    fn words_without_digits_and_apostrophes_stay() {
        let text = "cannot parse the message: can't read 'OrderCreated' field `items`.";
        assert_eq!(
            mask(text),
            "cannot parse the message: can't read '…' field `…`."
        );
        assert_eq!(mask("order-17 failed."), "# failed.");
        assert_eq!(mask("unterminated \"quote"), "unterminated \"quote");
    }

    #[test]
    fn a_group_is_one_service_event_type_and_masked_error() {
        let id = group_id("inventory", "OrderCreated", "boom #");
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, group_id("inventory", "OrderCreated", "boom #"));
        assert_ne!(id, group_id("payment", "OrderCreated", "boom #"));
        assert_ne!(id, group_id("inventory", "OrderCancelled", "boom #"));
        assert_ne!(id, group_id("inventory", "OrderCreated", "bang #"));
    }
}
