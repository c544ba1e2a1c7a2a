//! The one place that reads the system clock, and a clock tests can pin.

use std::fmt;

use chrono::{DateTime, Utc};

/// A source of the current time. SOAP signatures use it, so tests and the
/// CLI's `--timestamp` can pin it and reproduce a signature byte for byte.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant.
///
/// ```
/// use marketo_campaign::{Clock, FixedClock};
/// let clock = FixedClock::parse("2010-04-09T14:04:54-07:00")?;
/// assert_eq!(clock.now().to_rfc3339(), "2010-04-09T21:04:54+00:00");
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl FixedClock {
    /// A clock pinned to a W3C / RFC 3339 timestamp, e.g. `2010-04-09T14:04:54-07:00`.
    pub fn parse(timestamp: &str) -> Result<Self, crate::Error> {
        DateTime::parse_from_rfc3339(timestamp)
            .map(|t| FixedClock(t.with_timezone(&Utc)))
            .map_err(|e| {
                crate::Error::invalid(
                    "timestamp",
                    format!(
                        "{} is not a W3C timestamp like 2010-04-09T14:04:54-07:00: {e}",
                        crate::request::shown(timestamp)
                    ),
                )
            })
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
