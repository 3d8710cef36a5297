//! A trace context carried through unchanged while nothing is exported (see the module
//! doc of [`super`]): kept in the extensions of the span that continues it.

use super::TraceHeaders;
use tracing::Span;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// A W3C `traceparent` worth passing on: version `00`, a trace id and a parent id in
/// lowercase hex, neither all zeros, and the flags.
pub(super) fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && part.bytes().any(|b| b != b'0')
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && parts[3].len() == 2
        && parts[3].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A context a span continues, kept as it came while nothing is exported (see the module
/// doc); lives in the span's extensions.
#[derive(Debug, Clone)]
pub(super) struct Carried(pub(super) TraceHeaders);

impl Carried {
    /// Keeps this context with `span` (nothing happens to a disabled span).
    pub(super) fn attach(self, span: &Span) {
        span.with_subscriber(|(id, dispatch)| {
            if let Some(span) = dispatch
                .downcast_ref::<Registry>()
                .and_then(|registry| registry.span(id))
            {
                span.extensions_mut().insert(self);
            }
        });
    }

    /// The context `span` or its nearest ancestor carries.
    pub(super) fn nearest(span: &Span) -> Option<Self> {
        span.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            registry
                .span(id)?
                .scope()
                .find_map(|span| span.extensions().get::<Carried>().cloned())
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::is_traceparent;

    #[test]
    fn only_a_well_formed_traceparent_is_passed_on() {
        assert!(is_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nX: y",
        ] {
            assert!(!is_traceparent(bad), "{bad:?}");
        }
    }
}
