//! The OAuth token cache: one token per client, shared by clones and threads.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{excerpt, Error};
use crate::secret::Secret;
use crate::transport::Http;

/// What the identity service answers.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    expires_at: Instant,
}

/// Client-credentials tokens, fetched on demand, renewed `margin` before
/// they expire. The lock is held while fetching, so concurrent callers wait
/// for one fetch instead of each making their own.
pub(crate) struct TokenCache {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    margin: Duration,
    current: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(
        identity: &str,
        client_id: String,
        client_secret: Secret,
        margin: Duration,
    ) -> Self {
        TokenCache {
            token_url: format!("{}/oauth/token", identity.trim_end_matches('/')),
            client_id,
            client_secret,
            margin,
            current: Mutex::new(None),
        }
    }

    /// The URL of the token request, with the secret redacted (for dry runs).
    pub(crate) fn redacted_url(&self) -> String {
        self.url("[redacted]")
    }

    fn url(&self, secret: &str) -> String {
        format!(
            "{}?grant_type=client_credentials&client_id={}&client_secret={}",
            self.token_url,
            super::lookup::encode(&self.client_id),
            super::lookup::encode(secret)
        )
    }

    /// A token valid for at least `margin` (or the freshest the identity
    /// service will give).
    pub(crate) fn get(&self, http: &Http) -> Result<Secret, Error> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = current.as_ref() {
            if Instant::now() + self.margin < cached.expires_at {
                return Ok(cached.token.clone());
            }
        }
        let fetched = self.fetch(http)?;
        let token = fetched.token.clone();
        *current = Some(fetched);
        Ok(token)
    }

    /// Forgets `token` if it is still the current one (after a 601/602).
    pub(crate) fn invalidate(&self, token: &Secret) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current
            .as_ref()
            .is_some_and(|c| c.token.expose() == token.expose())
        {
            *current = None;
        }
    }

    fn fetch(&self, http: &Http) -> Result<Cached, Error> {
        let asked = Instant::now();
        // The URL carries the secret: it is never logged nor put in an error.
        let response = http
            .get(
                &self.url(self.client_secret.expose()),
                &[("Accept", "application/json")],
            )
            .map_err(|e| match e {
                Error::Transport { message, .. } => Error::Auth(format!(
                    "the identity service is unreachable: {}",
                    redact(&message, self.client_secret.expose())
                )),
                other => other,
            })?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&response.body).ok();
        let parsed = match parsed {
            Some(parsed) if response.status == 200 => parsed,
            Some(TokenResponse {
                error: Some(error),
                error_description,
                ..
            }) => {
                return Err(Error::Auth(format!(
                    "HTTP {}: {error}: {}",
                    response.status,
                    error_description.unwrap_or_default()
                )))
            }
            _ => {
                return Err(Error::Auth(format!(
                    "HTTP {} from the identity service: {:?}",
                    response.status,
                    redact(&excerpt(&response.body, 200), self.client_secret.expose())
                )))
            }
        };
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Auth("the identity service answered without an access_token".into())
            })?;
        let expires_in = Duration::from_secs(parsed.expires_in.unwrap_or(0));
        log::debug!("fetched an access token valid for {expires_in:?}");
        Ok(Cached {
            token: Secret::new(token),
            expires_at: asked + expires_in,
        })
    }
}

/// Removes `secret` from a message that might quote a URL.
fn redact(message: &str, secret: &str) -> String {
    if secret.is_empty() {
        return message.to_owned();
    }
    message
        .replace(secret, "[redacted]")
        .replace(&super::lookup::encode(secret), "[redacted]")
}
