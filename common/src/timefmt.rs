//! Times in API responses as the original service wrote them: UTC, ISO 8601 with
//! microseconds and no offset, e.g. `2025-12-16T10:00:00.000000`.

use chrono::{DateTime, Utc};
use serde::Serializer;

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&at.format("%Y-%m-%dT%H:%M:%S%.6f"))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct At(#[serde(with = "super")] chrono::DateTime<chrono::Utc>);

    #[test]
    fn writes_microseconds_without_offset() {
        let at = chrono::DateTime::parse_from_rfc3339("2025-12-16T10:00:00.5Z").unwrap();
        assert_eq!(
            serde_json::to_string(&At(at.into())).unwrap(),
            "\"2025-12-16T10:00:00.500000\""
        );
    }
}
