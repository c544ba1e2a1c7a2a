//! One redaction for every server text the crate quotes.
//!
//! A server may echo the request in an error body: the `Authorization`
//! header with its bearer token, the token request's URL with the client
//! secret, a SOAP header with its signature. Every body or message quoted in
//! an [`Error`](crate::Error) or a log line passes through [`quote`], which
//! redacts *before* it truncates, so a secret that straddles the cut cannot
//! survive in part.

use std::borrow::Cow;

use crate::error::{excerpt, Error};

const REDACTED: &str = "[redacted]";

/// Names whose value is a secret, as they appear in JSON, URLs, headers and
/// XML (compared case-insensitively).
const SECRET_NAMES: &[&str] = &[
    "access_token",
    "refresh_token",
    "client_secret",
    "encryptionkey",
    "encryption_key",
    "requestsignature",
    "authorization",
];

/// `body` as text, redacted, then cut to at most `max` bytes.
pub(crate) fn quote(body: &[u8], max: usize) -> String {
    quote_with(body, max, &[])
}

/// [`quote`], also removing each of `secrets` (as is and URL-encoded)
/// wherever it appears, before the cut.
pub(crate) fn quote_with(body: &[u8], max: usize, secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    remove_secrets(&mut text, secrets);
    let text = redact(&text);
    if text.len() <= max {
        return text.into_owned();
    }
    excerpt(text.as_bytes(), max)
}

/// Replaces each of `secrets` (as is and URL-encoded) in `text` by
/// `[redacted]`; says whether there was any.
fn remove_secrets(text: &mut String, secrets: &[&str]) -> bool {
    let mut found = false;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let encoded = crate::rest::encode(secret);
        for form in [*secret, encoded.as_str()] {
            if text.contains(form) {
                *text = text.replace(form, REDACTED);
                found = true;
            }
        }
    }
    found
}

/// `err` with each of `secrets` (as is and URL-encoded) removed from every
/// server text it quotes: a client's last guard, so that an answer echoing
/// its own secret or token under no recognisable name is never printed.
pub(crate) fn scrub_error(err: Error, secrets: &[&str]) -> Error {
    let clean = |mut text: String| {
        if remove_secrets(&mut text, secrets) {
            // What the secret stood in may now read as a named one.
            text = redact(&text).into_owned();
        }
        text
    };
    match err {
        Error::Protocol {
            status,
            reason,
            body,
        } => Error::Protocol {
            status,
            reason: clean(reason),
            body: clean(body),
        },
        Error::HttpStatus { status, body } => Error::HttpStatus {
            status,
            body: clean(body),
        },
        Error::Rest { code, message } => Error::Rest {
            code,
            message: clean(message),
        },
        Error::Transport {
            delivery,
            message,
            source,
        } => Error::Transport {
            delivery,
            message: clean(message),
            source,
        },
        Error::Auth(message) => Error::Auth(clean(message)),
        Error::Lookup(message) => Error::Lookup(clean(message)),
        Error::ReadFailed { call, source } => Error::ReadFailed {
            call,
            source: Box::new(scrub_error(*source, secrets)),
        },
        Error::PartlyServed {
            served,
            leads,
            parts,
            accepted,
            failure,
        } => Error::PartlyServed {
            served,
            leads,
            parts,
            accepted,
            failure: failure.map(|err| Box::new(scrub_error(*err, secrets))),
        },
        other => other,
    }
}

/// `text` with every secret value replaced by `[redacted]`: the value after
/// each name of [`SECRET_NAMES`] (`name=v`, `"name":"v"`, `name: v`,
/// `<name>v<`) and after each `Bearer`.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    // ASCII lowercase keeps byte offsets: search in it, cut in `text`.
    let lower = text.to_ascii_lowercase();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for name in SECRET_NAMES.iter().copied().chain(["bearer"]) {
        let mut from = 0;
        while let Some(at) = lower[from..].find(name) {
            let after = from + at + name.len();
            from = after;
            if let Some(span) = value_span(text, after, name) {
                spans.push(span);
            }
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, end) in spans {
        if end <= pos {
            continue;
        }
        let start = start.max(pos);
        out.push_str(&text[pos..start]);
        out.push_str(REDACTED);
        pos = end;
    }
    out.push_str(&text[pos..]);
    Cow::Owned(out)
}

/// The byte range of the value that follows a secret's name ending at
/// `after`, if one does.
fn value_span(text: &str, after: usize, name: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut start = after;
    // `Bearer` is followed by whitespace; a name by its separators.
    let separators: &[u8] = if name == "bearer" {
        b" \t"
    } else {
        b" \t\"':=>\\"
    };
    while start < bytes.len() && separators.contains(&bytes[start]) {
        start += 1;
    }
    if start == after && name == "bearer" {
        return None;
    }
    // An `Authorization` value holds a space (`Bearer x`, `Basic x`).
    let ends_at = |b: u8| match name {
        "authorization" => b"\"'<,;}\r\n".contains(&b),
        _ => b"\"'<&,;}) \t\r\n\\".contains(&b),
    };
    let mut end = start;
    while end < bytes.len() && !ends_at(bytes[end]) {
        end += 1;
    }
    (end > start && !text[start..end].starts_with(REDACTED)).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_every_form() {
        for (text, secret) in [
            ("Authorization: Bearer abc.def-123\r\nHost: x", "abc.def-123"),
            (r#"{"headers":{"Authorization":"Bearer tok_9"}}"#, "tok_9"),
            ("GET /oauth/token?grant_type=client_credentials&client_id=a&client_secret=Mv3Qw8E HTTP/1.1", "Mv3Qw8E"),
            (r#"{"access_token":"cdf01657-110d-4155-99a7-f986b2ff13a0:int","expires_in":3599}"#, "cdf01657"),
            ("<requestSignature>ffbff4d4bef354807481e66dc7540f7890523a87</requestSignature>", "ffbff4d4"),
            ("encryptionKey=899756834129871744AAEE88DDCC77CDEEDEC1AAAD66", "89975683"),
            ("CLIENT_SECRET: s3cr3t", "s3cr3t"),
        ] {
            let redacted = redact(text);
            assert!(!redacted.contains(secret), "{text} -> {redacted}");
            assert!(redacted.contains(REDACTED), "{text} -> {redacted}");
        }
    }

    #[test]
    fn other_text_is_left_alone() {
        let text = r#"{"success":false,"errors":[{"code":"1004","message":"Lead not found"}]}"#;
        assert!(matches!(redact(text), Cow::Borrowed(_)));
        assert_eq!(redact("a bearer of news"), "a bearer [redacted] news");
    }

    #[test]
    fn redaction_comes_before_the_cut() {
        // The secret straddles byte 200: cut first, its start would survive.
        let body = format!(
            "{}client_secret=ClientSecretMv3Qw8E4242&x=1",
            "x".repeat(190)
        );
        let quoted = quote(body.as_bytes(), 200);
        assert!(!quoted.contains("ClientSecret"), "{quoted}");
        assert!(quoted.len() <= 200 + "…".len());
    }
}
