//! The OAuth token cache: one token per client, shared by clones and threads.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::Error;
use crate::redact;
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

/// How the identity service takes a client-credentials request.
#[derive(Debug, Clone)]
enum Style {
    /// Marketo: `GET {identity}/oauth/token?grant_type=..&client_id=..&client_secret=..`.
    MarketoGet,
    /// Adobe IMS: `POST {token_url}` with a form body (`grant_type`,
    /// `client_id`, `client_secret`, `scope`).
    ImsForm { scope: String },
}

/// Client-credentials tokens, fetched on demand, renewed `margin` before
/// they expire. The lock is held while fetching, so concurrent callers wait
/// for one fetch instead of each making their own. Marketo's identity
/// service and Adobe IMS share it; they differ in how the request is made
/// ([`Style`]) and how long a token may live.
pub(crate) struct TokenCache {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    margin: Duration,
    style: Style,
    max_life: Duration,
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
            style: Style::MarketoGet,
            max_life: MAX_TOKEN_LIFETIME,
            current: Mutex::new(None),
        }
    }

    /// Adobe IMS server-to-server credentials: `POST token_url` (e.g.
    /// `https://ims-na1.adobelogin.com/ims/token/v3`) with a form body.
    /// IMS tokens live 24 hours.
    pub(crate) fn ims(
        token_url: &str,
        client_id: String,
        client_secret: Secret,
        scope: String,
        margin: Duration,
    ) -> Self {
        TokenCache {
            token_url: token_url.to_owned(),
            client_id,
            client_secret,
            margin,
            style: Style::ImsForm { scope },
            max_life: MAX_IMS_TOKEN_LIFETIME,
            current: Mutex::new(None),
        }
    }

    /// The token request as a dry run shows it: method, URL, headers and
    /// body, the client secret redacted.
    pub(crate) fn planned(&self) -> crate::plan::PlannedRequest {
        let accept = ("Accept".to_owned(), "application/json".to_owned());
        match &self.style {
            Style::MarketoGet => crate::plan::PlannedRequest {
                method: "GET",
                url: self.redacted_url(),
                headers: std::collections::BTreeMap::from([accept]),
                body: String::new(),
            },
            Style::ImsForm { scope } => crate::plan::PlannedRequest {
                method: "POST",
                url: self.token_url.clone(),
                headers: std::collections::BTreeMap::from([
                    accept,
                    ("Content-Type".to_owned(), FORM.to_owned()),
                ]),
                body: self.form("[redacted]", scope),
            },
        }
    }

    /// The form body; `encoded_secret` is the secret URL-encoded (or the
    /// placeholder a dry run shows).
    fn form(&self, encoded_secret: &str, scope: &str) -> String {
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={encoded_secret}&scope={}",
            super::lookup::encode(&self.client_id),
            super::lookup::encode(scope)
        )
    }

    /// The client secret (to redact it wherever an answer echoes it).
    pub(crate) fn client_secret(&self) -> &Secret {
        &self.client_secret
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
            // A margin too large for the clock means: always renew.
            if Instant::now()
                .checked_add(self.margin)
                .is_some_and(|t| t < cached.expires_at)
            {
                return Ok(cached.token.clone());
            }
        }
        let fetched = self.fetch(http)?;
        let token = fetched.token.clone();
        *current = Some(fetched);
        Ok(token)
    }

    /// `err` with this cache's secret and its current token removed from
    /// every server text it quotes ([`redact::scrub_error`]).
    pub(crate) fn scrub(&self, err: Error) -> Error {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| c.token.clone());
        let token = current.as_ref().map_or("", |t| t.expose());
        redact::scrub_error(err, &[self.client_secret.expose(), token])
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
        let secret = self.client_secret.expose();
        // The URL carries the secret: it is never logged nor put in an error.
        let response = match &self.style {
            Style::MarketoGet => http.get(&self.url(secret), &[("Accept", "application/json")]),
            Style::ImsForm { scope } => http.post(
                &self.token_url,
                &[("Accept", "application/json"), ("Content-Type", FORM)],
                self.form(&super::lookup::encode(secret), scope).as_bytes(),
            ),
        };
        let answer = response
            .and_then(|response| read_token_answer(response.status, &response.body, secret));
        let (token, expires_in) = answer.map_err(|e| redact_error(e, secret))?;
        let expires_in = expires_in.min(self.max_life);
        log::debug!("fetched an access token valid for {expires_in:?}");
        Ok(Cached {
            token: Secret::new(token),
            // `expires_in` is capped, so this cannot overflow; if the clock
            // could not hold it, the token is treated as expiring now.
            expires_at: asked.checked_add(expires_in).unwrap_or(asked),
        })
    }
}

/// The longest life believed of a token: Marketo's last 3600 s; a larger
/// `expires_in` (up to `u64::MAX`, which would overflow an `Instant`) is
/// cut to this.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest life believed of an Adobe IMS token: 24 hours.
const MAX_IMS_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The content type of the IMS token request.
const FORM: &str = "application/x-www-form-urlencoded";

/// Reads the identity service's answer: the token and how long it lives.
///
/// The identity service refusing the credentials (a 4xx, or an `error`) is
/// [`Error::Auth`]; any other failure (a 5xx, an unreadable answer, no
/// token) is [`Error::ReadFailed`]: a token request triggers nothing and may
/// be repeated.
pub(crate) fn read_token_answer(
    status: u16,
    body: &[u8],
    secret: &str,
) -> Result<(String, Duration), Error> {
    let quote = |text: &[u8], max| redact::quote_with(text, max, &[secret]);
    let read_failed = |reason: String| Error::ReadFailed {
        call: "token request".into(),
        source: Box::new(Error::Protocol {
            status,
            reason,
            body: quote(body, 200),
        }),
    };
    let parsed: Option<TokenResponse> = serde_json::from_slice(body).ok();
    let parsed = match parsed {
        // An OAuth error on a 5xx (`server_error`) passes; elsewhere the
        // credentials were refused.
        Some(TokenResponse {
            error: Some(error),
            error_description,
            ..
        }) if status < 500 => {
            return Err(Error::Auth(format!(
                "HTTP {status}: {}",
                quote(
                    format!("{error}: {}", error_description.unwrap_or_default()).as_bytes(),
                    200
                )
            )))
        }
        Some(parsed) if status == 200 => parsed,
        _ if (400..500).contains(&status) => {
            return Err(Error::Auth(format!(
                "HTTP {status} from the identity service: {:?}",
                quote(body, 200)
            )))
        }
        _ => return Err(read_failed("not an identity answer".into())),
    };
    let token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| read_failed("an answer without an access_token".into()))?;
    let expires_in =
        Duration::from_secs(parsed.expires_in.unwrap_or(0)).min(MAX_IMS_TOKEN_LIFETIME);
    Ok((token, expires_in))
}

/// A failed exchange becomes [`Error::ReadFailed`], its message without
/// the client secret (the URL carries it).
fn redact_error(err: Error, secret: &str) -> Error {
    match err {
        // The HTTP stack's error may quote the URL, which carries the
        // secret: it is not kept.
        Error::Transport {
            delivery, message, ..
        } => Error::ReadFailed {
            call: "token request".into(),
            source: Box::new(Error::Transport {
                delivery,
                message: redact::quote_with(message.as_bytes(), usize::MAX, &[secret]),
                source: None,
            }),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_expires_in_is_read_without_overflow() {
        for expires_in in ["0", "1", "3599", "4294967296", "18446744073709551615"] {
            let body = format!(r#"{{"access_token":"t","expires_in":{expires_in}}}"#);
            let (token, life) = read_token_answer(200, body.as_bytes(), "s").unwrap();
            assert_eq!(token, "t");
            assert!(life <= MAX_IMS_TOKEN_LIFETIME, "{expires_in}: {life:?}");
        }
        // Past u64: not an identity answer, asked again.
        let err =
            read_token_answer(200, br#"{"access_token":"t","expires_in":1e999}"#, "s").unwrap_err();
        assert!(matches!(err, Error::ReadFailed { .. }), "{err:?}");
    }

    #[test]
    fn refusals_are_auth_and_failures_are_read_failed() {
        let err = read_token_answer(
            401,
            br#"{"error":"invalid_client","error_description":"Bad client credentials"}"#,
            "s",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
        let err = read_token_answer(502, b"<html>Bad Gateway</html>", "s").unwrap_err();
        assert!(matches!(err, Error::ReadFailed { .. }), "{err:?}");
        assert_eq!(err.classify().action, crate::Action::Retry);
        let err = read_token_answer(200, br#"{"token_type":"bearer"}"#, "s").unwrap_err();
        assert!(matches!(err, Error::ReadFailed { .. }), "{err:?}");
    }

    #[test]
    fn a_huge_margin_renews_instead_of_panicking() {
        let cache = TokenCache::new(
            "http://127.0.0.1:9",
            "id".into(),
            Secret::new("s"),
            Duration::MAX,
        );
        *cache.current.lock().unwrap() = Some(Cached {
            token: Secret::new("t"),
            expires_at: Instant::now() + Duration::from_secs(3600),
        });
        // Renewing fails (nothing listens on port 9), but nothing panics.
        let http = Http::new(&crate::transport::HttpConfig::default());
        assert!(cache.get(&http).is_err());
    }
}
