//! The identity service: OAuth 2 client-credentials tokens, as Marketo
//! issues them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::query::Params;
use crate::State;

/// The token path under the identity endpoint.
pub(crate) const TOKEN_PATH: &str = "/identity/oauth/token";
/// The scope every token carries.
const SCOPE: &str = "apiuser@sandbox.example";
/// Expired tokens remembered (so they answer 602 rather than 601) before
/// they are forgotten.
const REMEMBERED_TOKENS: usize = 4096;

/// What a presented token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    /// Issued and still valid.
    Valid,
    /// Issued, now expired (602).
    Expired,
    /// Never issued (601).
    Unknown,
}

/// Issued tokens and their expiry.
#[derive(Debug)]
pub(crate) struct Tokens {
    lifetime: chrono::Duration,
    inner: Mutex<Issued>,
}

#[derive(Debug, Default)]
struct Issued {
    /// The token handed out while it is valid.
    current: Option<String>,
    /// Every remembered token and when it expires.
    expiry: HashMap<String, DateTime<Utc>>,
    /// Tokens issued so far, mixed into each new one.
    count: u64,
}

impl Tokens {
    pub(crate) fn new(lifetime: std::time::Duration) -> Self {
        Tokens {
            lifetime: chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX),
            inner: Mutex::new(Issued::default()),
        }
    }

    /// The current token and its remaining whole seconds, issuing a new one
    /// when there is none or it has expired.
    pub(crate) fn token(&self, now: DateTime<Utc>) -> (String, i64) {
        let mut issued = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = &issued.current {
            if let Some(&expires) = issued.expiry.get(current) {
                if now < expires {
                    return (current.clone(), (expires - now).num_seconds());
                }
            }
        }
        if issued.expiry.len() >= REMEMBERED_TOKENS {
            issued.expiry.retain(|_, expires| now < *expires);
        }
        let token = loop {
            issued.count += 1;
            let token = opaque_token(issued.count);
            if !issued.expiry.contains_key(&token) {
                break token;
            }
        };
        let expires = now
            .checked_add_signed(self.lifetime)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        issued.expiry.insert(token.clone(), expires);
        issued.current = Some(token.clone());
        (token, (expires - now).num_seconds())
    }

    /// The status of the token an `Authorization: Bearer …` header value
    /// carries ([`TokenStatus::Unknown`] without one).
    pub(crate) fn bearer_status(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> TokenStatus {
        let token = authorization
            .map(str::trim)
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        match token {
            Some(token) => self.status(token, now),
            None => TokenStatus::Unknown,
        }
    }

    /// Whether `token` is valid at `now`.
    pub(crate) fn status(&self, token: &str, now: DateTime<Utc>) -> TokenStatus {
        let issued = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match issued.expiry.get(token) {
            Some(&expires) if now < expires => TokenStatus::Valid,
            Some(_) => TokenStatus::Expired,
            None => TokenStatus::Unknown,
        }
    }

    /// Expires every token issued so far.
    pub(crate) fn expire_all(&self) {
        let mut issued = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        issued.current = None;
        for expires in issued.expiry.values_mut() {
            *expires = DateTime::<Utc>::MIN_UTC;
        }
    }
}

/// A fresh opaque token shaped like Marketo's (`uuid:region`), from
/// std's randomly keyed hasher (a fresh key per `RandomState`) and a
/// counter, so that two tokens never come from the same input.
fn opaque_token(count: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(count);
        hasher.write_u64(salt);
        hasher.finish()
    };
    let (high, low) = (word(1), word(2));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}:sb",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// Answers a call to the token path: status and JSON body.
pub(crate) fn handle(state: &State, params: &Params) -> (u16, String) {
    let good = params.get("grant_type") == Some("client_credentials")
        && params.get("client_id") == Some(state.data.client_id.as_str())
        && params.get("client_secret") == Some(state.data.client_secret.as_str());
    if !good {
        let body = serde_json::json!({
            "error": "unauthorized",
            "error_description": "Bad client credentials",
        });
        return (401, body.to_string());
    }
    let (token, expires_in) = state.tokens.token(state.clock.now());
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in.max(0),
        "scope": SCOPE,
    });
    (200, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn same_token_until_expiry_then_a_new_one() {
        let tokens = Tokens::new(Duration::from_secs(10));
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let (a, life) = tokens.token(t0);
        assert_eq!(life, 10);
        assert_eq!(
            tokens.token(t0 + chrono::Duration::milliseconds(9_500)),
            (a.clone(), 0)
        );
        assert_eq!(tokens.status(&a, t0), TokenStatus::Valid);
        let later = t0 + chrono::Duration::seconds(10);
        assert_eq!(tokens.status(&a, later), TokenStatus::Expired);
        let (b, _) = tokens.token(later);
        assert_ne!(a, b);
        tokens.expire_all();
        assert_eq!(tokens.status(&b, later), TokenStatus::Expired);
        assert_eq!(tokens.status("nope", later), TokenStatus::Unknown);
        assert_ne!(tokens.token(later).0, b);
    }

    #[test]
    fn tokens_are_distinct_and_opaque() {
        let made: std::collections::HashSet<String> = (0..1000).map(opaque_token).collect();
        assert_eq!(made.len(), 1000);
        assert!(made.iter().all(|t| t.len() == 39 && t.ends_with(":sb")));
    }
}
