//! A planned HTTP request, as `--dry-run` shows it.

use std::collections::BTreeMap;

use serde::Serialize;

/// One HTTP request a client would send, secrets redacted. Produced by the
/// clients' `plan` methods; nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The full URL (no secrets: tokens travel in headers).
    pub url: String,
    /// Request headers; secret values are replaced by `[redacted]`.
    pub headers: BTreeMap<String, String>,
    /// The body, exactly as it would be sent (empty for `GET`).
    pub body: String,
}
