//! A string that must never be printed.

use std::fmt;

/// A secret: an encryption key, a client secret or an access token.
///
/// `Debug` prints `[redacted]`; there is no `Display` and no `PartialEq`, so a
/// secret cannot end up in a log line or a comparison by accident. Read it
/// with [`Secret::expose`].
///
/// ```
/// use marketo_campaign::Secret;
/// let key = Secret::new("899756834129871744AAEE88DDCC77CDEEDEC1AAAD66");
/// assert_eq!(format!("{key:?}"), "[redacted]");
/// assert!(key.expose().starts_with("8997"));
/// ```
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}
