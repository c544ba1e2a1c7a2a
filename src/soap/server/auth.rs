//! Checking an `AuthenticationHeader`: the signature, in constant time, and
//! the timestamp's age.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::{AuthenticationHeader, Fault};
use crate::clock::{Clock, SystemClock};
use crate::error::SoapCode;

/// How far a `requestTimestamp` may be from the server's clock, either way,
/// by default: 15 minutes.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// One SOAP user: its id and its encryption key, keyed into HMAC-SHA1 once.
#[derive(Clone)]
struct User {
    id: String,
    mac: Hmac<Sha1>,
}

/// Checks `AuthenticationHeader`s as Marketo does: the user id must be one
/// it knows, `requestSignature` must be the hex HMAC-SHA1 of
/// `requestTimestamp` + `mktowsUserId` under that user's encryption key
/// (compared in constant time), else fault 20014; the timestamp must be
/// within [`max_clock_skew`](Authenticator::max_clock_skew) of the clock,
/// else fault 20016.
///
/// `Debug` shows user ids only, never a key.
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::soap::{read_envelope, Authenticator};
/// use marketo_campaign::{FixedClock, SoapCode};
/// let envelope = br#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>bigcorp1_461839624B16E06BA2D663</mktowsUserId><requestSignature>ffbff4d4bef354807481e66dc7540f7890523a87</requestSignature><requestTimestamp>2010-04-09T14:04:54-07:00</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:paramsRequestCampaign/></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
/// let envelope = read_envelope(envelope)?;
/// let auth = Authenticator::new("bigcorp1_461839624B16E06BA2D663", "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66");
///
/// // Signed ten minutes before this clock: accepted.
/// let then = auth.clone().clock(FixedClock::parse("2010-04-09T14:14:54-07:00")?);
/// assert!(then.verify(envelope.auth()).is_ok());
///
/// // A day later: expired (20016), unless the window is wider.
/// let later = auth.clone().clock(FixedClock::parse("2010-04-10T14:04:54-07:00")?);
/// assert_eq!(later.verify(envelope.auth()).unwrap_err().code(), SoapCode::RequestExpired);
/// let lenient = later.max_clock_skew(Duration::from_secs(2 * 86_400));
/// assert!(lenient.verify(envelope.auth()).is_ok());
///
/// // Another key: 20014.
/// let other = Authenticator::new("bigcorp1_461839624B16E06BA2D663", "wrong");
/// assert_eq!(other.verify(envelope.auth()).unwrap_err().code(), SoapCode::AuthenticationFailed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Authenticator {
    users: Vec<User>,
    max_skew: chrono::Duration,
    clock: Arc<dyn Clock>,
}

impl Authenticator {
    /// Accepts one SOAP user, with the system clock and
    /// [`DEFAULT_MAX_CLOCK_SKEW`].
    pub fn new(user_id: impl Into<String>, encryption_key: impl AsRef<[u8]>) -> Self {
        Authenticator {
            users: Vec::new(),
            max_skew: skew(DEFAULT_MAX_CLOCK_SKEW),
            clock: Arc::new(SystemClock),
        }
        .user(user_id, encryption_key)
    }

    /// Accepts the SOAP user of `MARKETO_SOAP_USER_ID` and
    /// `MARKETO_SOAP_ENCRYPTION_KEY` (the values a legacy integration
    /// holds); [`Error::Config`](crate::Error::Config) names a variable
    /// that is unset or blank.
    ///
    /// ```
    /// # std::env::remove_var("MARKETO_SOAP_USER_ID");
    /// let err = marketo_campaign::soap::Authenticator::from_env().unwrap_err();
    /// assert!(err.to_string().contains("MARKETO_SOAP_USER_ID"));
    /// ```
    pub fn from_env() -> Result<Self, crate::Error> {
        let user = crate::transport::env_var("MARKETO_SOAP_USER_ID")?;
        let key = crate::transport::env_var("MARKETO_SOAP_ENCRYPTION_KEY")?;
        Ok(Authenticator::new(user, key))
    }

    /// Also accepts this user (a later entry for the same id is never
    /// consulted).
    pub fn user(mut self, user_id: impl Into<String>, encryption_key: impl AsRef<[u8]>) -> Self {
        self.users.push(User {
            id: user_id.into(),
            mac: keyed(encryption_key.as_ref()),
        });
        self
    }

    /// How far a timestamp may be from the clock, either way, before the
    /// request is refused with 20016. Default: [`DEFAULT_MAX_CLOCK_SKEW`].
    pub fn max_clock_skew(mut self, skew_allowed: Duration) -> Self {
        self.max_skew = skew(skew_allowed);
        self
    }

    /// The clock timestamps are checked against. Default: the system clock.
    pub fn clock(self, clock: impl Clock + 'static) -> Self {
        self.shared_clock(Arc::new(clock))
    }

    /// The clock timestamps are checked against, shared with its other
    /// users (a server checking other credentials by the same clock).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use marketo_campaign::{Clock, FixedClock};
    /// use marketo_campaign::soap::Authenticator;
    /// let clock: Arc<dyn Clock> = Arc::new(FixedClock::parse("2010-04-09T14:04:54-07:00")?);
    /// let auth = Authenticator::new("user", "key").shared_clock(Arc::clone(&clock));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks `header`: `Ok` when the user is known, the signature right
    /// and the timestamp fresh; else fault 20014 (unknown user, wrong
    /// signature, timestamp that is not W3C) or 20016 (stale or future
    /// timestamp).
    pub fn verify(&self, header: &AuthenticationHeader<'_>) -> Result<(), Fault> {
        let user = self.users.iter().find(|u| u.id == header.user_id());
        let mut mac = match user {
            Some(user) => user.mac.clone(),
            // Spend the same work on an unknown user.
            None => keyed(b""),
        };
        mac.update(header.timestamp().as_bytes());
        mac.update(header.user_id().as_bytes());
        let mut signature = [0u8; 20];
        let decoded = hex::decode_to_slice(header.signature(), &mut signature).is_ok();
        let verified = mac.verify_slice(&signature).is_ok();
        if user.is_none() || !decoded || !verified {
            return Err(Fault::authentication_failed());
        }
        let time = DateTime::parse_from_rfc3339(header.timestamp())
            .map_err(|_| Fault::authentication_failed())?;
        if (self.clock.now() - time.to_utc()).abs() > self.max_skew {
            return Err(Fault::new(SoapCode::RequestExpired, "Request expired"));
        }
        Ok(())
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "users",
                &self.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            )
            .field("max_clock_skew", &self.max_skew)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha1> {
    <Hmac<Sha1> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

fn skew(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
