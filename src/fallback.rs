//! `Fallback<P, S>`: one requester in front of two, that never runs a
//! campaign twice.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Action, Delivery, Error};
use crate::request::{CampaignRequest, LeadKey};
use crate::requester::{failed_as_whole, CampaignRequester, Outcome};
use crate::schedule::{CampaignScheduler, ScheduleRequest, Scheduled};

/// Tries a primary backend, and falls back to a secondary one only when the
/// primary provably did not run the campaign.
///
/// It falls back when the primary's error is:
/// - *not sent* (connection refused, DNS, a request the primary cannot
///   express, failed authentication before anything was triggered);
/// - an answer meaning "this API is not available": HTTP 404, 405, 410 or
///   501 ([`Action::FallBack`](crate::Action::FallBack)). The primary is then
///   *retired*: later calls go straight to the secondary for
///   [`remember_retired`](Fallback::remember_retired) (default: one hour);
/// - *unknown* (a timeout after sending, say) only if you opt in with
///   [`fallback_on_unknown`](Fallback::fallback_on_unknown), since the
///   campaign may then run twice.
///
/// Any other refusal (wrong credentials, unknown campaign, unknown lead) is
/// returned as it is. The decision reads [`Error::classify`] only: codes and
/// HTTP statuses, never a message, since messages quote user data (a lead
/// `retired.staff@company.com` must not retire SOAP). When the primary fails part-way through a request of
/// several chunks, only the failed chunk and those after it go to the
/// secondary; the outcome says which backend served each chunk.
///
/// ```
/// use marketo_sandbox::{Sandbox, SandboxConfig};
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, Fallback, LeadKey};
///
/// let sandbox = Sandbox::start_with(SandboxConfig::new().soap_retired(Some(410)))?;
/// let client = Fallback::new(sandbox.soap_client()?, sandbox.rest_client()?);
/// let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
/// let outcome = client.request_campaign(&request)?;
/// assert_eq!(outcome.chunks()[0].backend(), "rest");
/// assert!(client.primary_retired());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug)]
pub struct Fallback<P, S> {
    primary: P,
    secondary: S,
    on_unknown: bool,
    remember: Option<Duration>,
    retired_until: Mutex<Option<Instant>>,
}

/// What to do after the primary failed.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Return the primary's error.
    Stop,
    /// Send to the secondary; `retire` the primary when it said it is gone.
    Fallback { retire: bool },
}

/// The verdict on the primary's error, from its classification alone:
/// codes and HTTP statuses, never message text (which quotes user data).
fn verdict(err: &Error, on_unknown: bool) -> Verdict {
    let class = err.classify();
    match (class.action, class.delivery) {
        (Action::FallBack, _) => Verdict::Fallback { retire: true },
        (_, Delivery::NotSent) => Verdict::Fallback { retire: false },
        (_, Delivery::Unknown) if on_unknown => Verdict::Fallback { retire: false },
        _ => Verdict::Stop,
    }
}

impl<P, S> Fallback<P, S> {
    /// `primary` first, `secondary` when the primary provably did not run
    /// the campaign. Defaults: no fallback on unknown outcomes; a retired
    /// primary is skipped for one hour.
    pub fn new(primary: P, secondary: S) -> Self {
        Fallback {
            primary,
            secondary,
            on_unknown: false,
            remember: Some(Duration::from_secs(3600)),
            retired_until: Mutex::new(None),
        }
    }

    /// Also fall back when the primary's outcome is unknown. Default: off.
    /// With it on, a campaign may run twice for the leads of the chunk whose
    /// outcome was unknown.
    pub fn fallback_on_unknown(mut self, on: bool) -> Self {
        self.on_unknown = on;
        self
    }

    /// How long a primary that answered "not available" is skipped; `None`
    /// tries it every time. Default: one hour. A duration past what the
    /// clock can hold (`Duration::MAX`) means "for the life of this value".
    pub fn remember_retired(mut self, duration: Option<Duration>) -> Self {
        self.remember = duration;
        self
    }

    /// `true` while calls go straight to the secondary.
    pub fn primary_retired(&self) -> bool {
        self.retired_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

    /// The primary backend.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The secondary backend.
    pub fn secondary(&self) -> &S {
        &self.secondary
    }

    fn retire(&self) {
        if let Some(duration) = self.remember {
            *self
                .retired_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(retired_until(duration));
        }
    }
}

/// Now + `duration`, or, when the clock cannot hold it, the furthest
/// instant it can (about a century away, halving until it fits).
fn retired_until(duration: Duration) -> Instant {
    let now = Instant::now();
    let mut duration = duration;
    loop {
        if let Some(until) = now.checked_add(duration) {
            return until;
        }
        duration /= 2;
    }
}

impl<P: fmt::Display, S: fmt::Display> fmt::Display for Fallback<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fallback({}, {})", self.primary, self.secondary)
    }
}

/// The primary's accepted chunks, then the secondary's result for the rest
/// (`remaining`, which the secondary chunks by its own size), numbered to
/// follow them.
fn merge(
    primary: &Outcome,
    secondary: Result<Outcome, Error>,
    remaining: &[LeadKey],
    secondary_size: usize,
) -> Result<Outcome, Error> {
    let accepted = primary.chunks().iter().filter(|c| c.is_accepted()).cloned();
    let (second, failed) = match secondary {
        Ok(outcome) => (outcome, false),
        Err(Error::Incomplete(outcome)) => (*outcome, true),
        Err(err) => {
            let chunks = remaining
                .chunks(secondary_size.max(1))
                .map(<[LeadKey]>::to_vec)
                .enumerate();
            (Outcome::new(failed_as_whole(err, chunks)), true)
        }
    };
    let merged = Outcome::new(accepted.chain(second.chunks().iter().cloned()));
    if failed {
        Err(Error::Incomplete(Box::new(merged)))
    } else {
        Ok(merged)
    }
}

#[deny(clippy::missing_trait_methods)]
impl<P: CampaignRequester, S: CampaignRequester> CampaignRequester for Fallback<P, S> {
    /// When the primary fails part-way and may fall back, the leads of its
    /// failed chunk and of those after it go to the secondary, which
    /// chunks them by its own size: the outcome holds the primary's
    /// accepted chunks, then the secondary's, numbered in order, each
    /// naming the backend that served it. The primary's accepted chunks are
    /// never sent again.
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        if self.primary_retired() {
            return self.secondary.request_campaign(request);
        }
        let err = match self.primary.request_campaign(request) {
            Ok(outcome) => return Ok(outcome),
            Err(err) => err,
        };
        let failure = match &err {
            Error::Incomplete(outcome) => outcome.first_failure().map(|(_, e)| e),
            other => Some(other),
        };
        let Some(Verdict::Fallback { retire }) = failure.map(|e| verdict(e, self.on_unknown))
        else {
            return Err(err);
        };
        log::warn!(
            "{}: falling back to {}{}: {err}",
            self.primary,
            self.secondary,
            if retire { " (primary retired)" } else { "" }
        );
        if retire {
            self.retire();
        }
        match &err {
            Error::Incomplete(outcome) => {
                let remaining: Vec<LeadKey> = outcome
                    .chunks()
                    .iter()
                    .filter(|c| !c.is_accepted())
                    .flat_map(|c| c.leads().iter().cloned())
                    .collect();
                let rest = request.with_leads(remaining.iter().cloned())?;
                merge(
                    outcome,
                    self.secondary.request_campaign(&rest),
                    &remaining,
                    self.secondary.max_leads_per_call(),
                )
            }
            _ => self.secondary.request_campaign(request),
        }
    }

    /// The size of the backend the next request goes to first: the
    /// primary's, or the secondary's while the primary is retired. After a
    /// fall-back part-way, the secondary's chunks may be of another size.
    fn max_leads_per_call(&self) -> usize {
        if self.primary_retired() {
            self.secondary.max_leads_per_call()
        } else {
            self.primary.max_leads_per_call()
        }
    }
}

impl<P: CampaignScheduler, S: CampaignScheduler> CampaignScheduler for Fallback<P, S> {
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        if self.primary_retired() {
            return self.secondary.schedule_campaign(request);
        }
        match self.primary.schedule_campaign(request) {
            Ok(scheduled) => Ok(scheduled),
            Err(err) => match verdict(&err, self.on_unknown) {
                Verdict::Stop => Err(err),
                Verdict::Fallback { retire } => {
                    log::warn!(
                        "{}: falling back to {}: {err}",
                        self.primary,
                        self.secondary
                    );
                    if retire {
                        self.retire();
                    }
                    self.secondary.schedule_campaign(request)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SoapCode;
    use crate::request::CampaignTarget;
    use crate::requester::StubRequester;

    fn request(n: u32) -> CampaignRequest {
        CampaignRequest::new(
            CampaignTarget::id(1),
            (1..=n).map(|i| LeadKey::id(i).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn verdicts() {
        let gone = Error::HttpStatus {
            status: 410,
            body: String::new(),
        };
        assert_eq!(verdict(&gone, false), Verdict::Fallback { retire: true });
        let refused = Error::Transport {
            delivery: Delivery::NotSent,
            message: "refused".into(),
            source: None,
        };
        assert_eq!(
            verdict(&refused, false),
            Verdict::Fallback { retire: false }
        );
        let unknown = Error::Transport {
            delivery: Delivery::Unknown,
            message: "timeout".into(),
            source: None,
        };
        assert_eq!(verdict(&unknown, false), Verdict::Stop);
        assert_eq!(verdict(&unknown, true), Verdict::Fallback { retire: false });
        let auth = Error::SoapFault {
            code: SoapCode::AuthenticationFailed,
            message: "Authentication failed".into(),
        };
        assert_eq!(verdict(&auth, true), Verdict::Stop);
        // Fault text quotes user data: it never decides (issue 8, defect 6).
        let not_found = Error::SoapFault {
            code: SoapCode::LeadNotFound,
            message: "Lead not found: EMAIL:retired.staff@company.com (no longer available)".into(),
        };
        assert_eq!(verdict(&not_found, false), Verdict::Stop);
        let removed = Error::SoapFault {
            code: SoapCode::Other(0),
            message: "The SOAP API has been removed".into(),
        };
        assert_eq!(verdict(&removed, false), Verdict::Stop);
        // A gateway's answer on a POST may hide a run (defect 2).
        let gateway = Error::Protocol {
            status: 503,
            reason: "a SOAP fault on HTTP 503".into(),
            body: String::new(),
        };
        assert_eq!(verdict(&gateway, false), Verdict::Stop);
    }

    fn not_sent() -> Error {
        Error::Transport {
            delivery: Delivery::NotSent,
            message: "refused".into(),
            source: None,
        }
    }

    /// (backend size, lead count) of each chunk, and whether accepted.
    fn shape(outcome: &Outcome) -> Vec<(usize, usize, bool)> {
        outcome
            .chunks()
            .iter()
            .map(|c| (c.index(), c.leads().len(), c.is_accepted()))
            .collect()
    }

    #[test]
    fn the_rest_goes_to_a_secondary_of_another_size_rechunked_by_its_size() {
        let request = request(250);
        // A primary of 20 fails its second call: 230 leads go to a
        // secondary of 100.
        let (primary, secondary) = (
            StubRequester::new().with_max_leads_per_call(20),
            StubRequester::new(),
        );
        primary.fail_call(2, not_sent());
        let fallback = Fallback::new(primary.clone(), secondary.clone());
        assert_eq!(fallback.max_leads_per_call(), 20);
        let outcome = fallback.request_campaign(&request).unwrap();
        assert_eq!(
            shape(&outcome),
            [(0, 20, true), (1, 100, true), (2, 100, true), (3, 30, true)]
        );
        assert_eq!(secondary.requests()[0].leads(), &request.leads()[20..]);
        let served: Vec<LeadKey> = primary.calls()[..1]
            .iter()
            .chain(&secondary.calls())
            .flat_map(|c| c.leads().to_vec())
            .collect();
        assert_eq!(served, request.leads(), "every lead once, in order");

        // A primary of 100 fails its second call: 150 leads go to a
        // secondary of 20, whose third call is refused.
        let (primary, secondary) = (
            StubRequester::new(),
            StubRequester::new().with_max_leads_per_call(20),
        );
        primary.fail_call(2, not_sent());
        secondary.fail_call(
            3,
            Error::SoapFault {
                code: SoapCode::AccessDenied,
                message: "Access denied".into(),
            },
        );
        let fallback = Fallback::new(primary.clone(), secondary.clone());
        let err = fallback.request_campaign(&request).unwrap_err();
        assert_eq!(err.delivery(), Delivery::Refused);
        let outcome = err.outcome().unwrap();
        let mut expected = vec![(0, 100, true), (1, 20, true), (2, 20, true), (3, 20, false)];
        expected.extend((4..8).map(|i| (i, 20, false)));
        expected.push((8, 10, false));
        assert_eq!(shape(outcome), expected);
        assert_eq!(outcome.first_failure().unwrap().0, 3);
        assert_eq!(outcome.not_attempted().count(), 90);
        let leads: Vec<LeadKey> = outcome
            .chunks()
            .iter()
            .flat_map(|c| c.leads().to_vec())
            .collect();
        assert_eq!(leads, request.leads());
    }

    /// A backend of 20 that refuses every request as a whole.
    #[derive(Debug)]
    struct Unreachable;

    impl fmt::Display for Unreachable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Unreachable")
        }
    }

    impl CampaignRequester for Unreachable {
        fn request_campaign(&self, _: &CampaignRequest) -> Result<Outcome, Error> {
            Err(Error::Config("no credentials".into()))
        }

        fn max_leads_per_call(&self) -> usize {
            20
        }
    }

    #[test]
    fn a_secondary_failing_as_a_whole_is_reported_by_its_chunks() {
        let primary = StubRequester::new();
        primary.fail_call(2, not_sent());
        let fallback = Fallback::new(primary, Unreachable);
        let err = fallback.request_campaign(&request(150)).unwrap_err();
        let outcome = err.outcome().unwrap();
        assert_eq!(
            shape(outcome),
            [
                (0, 100, true),
                (1, 20, false),
                (2, 20, false),
                (3, 10, false)
            ]
        );
        assert!(matches!(
            outcome.first_failure(),
            Some((1, Error::Config(_)))
        ));
        assert_eq!(outcome.not_attempted().count(), 30);
    }

    #[test]
    fn a_retired_primary_hands_over_its_size() {
        let fallback = Fallback::new(
            StubRequester::failing(Error::HttpStatus {
                status: 410,
                body: String::new(),
            }),
            StubRequester::new().with_max_leads_per_call(20),
        );
        assert_eq!(fallback.max_leads_per_call(), 100);
        let outcome = fallback.request_campaign(&request(30)).unwrap();
        assert_eq!(shape(&outcome), [(0, 20, true), (1, 10, true)]);
        assert!(fallback.primary_retired());
        assert_eq!(fallback.max_leads_per_call(), 20);
    }

    #[test]
    fn a_huge_retirement_does_not_panic() {
        let fallback = Fallback::new(
            StubRequester::failing(Error::HttpStatus {
                status: 410,
                body: String::new(),
            }),
            StubRequester::new(),
        )
        .remember_retired(Some(Duration::MAX));
        fallback.request_campaign(&request(1)).unwrap();
        assert!(fallback.primary_retired());
    }

    #[test]
    fn falls_back_only_when_safe() {
        let secondary = StubRequester::new();
        let fallback = Fallback::new(
            StubRequester::failing(Error::Transport {
                delivery: Delivery::Unknown,
                message: "reset".into(),
                source: None,
            }),
            secondary.clone(),
        );
        assert!(fallback.request_campaign(&request(1)).is_err());
        assert!(secondary.requests().is_empty());
        assert_eq!(fallback.to_string(), "Fallback(Stub, Stub)");

        let fallback = Fallback::new(
            StubRequester::failing(Error::HttpStatus {
                status: 404,
                body: String::new(),
            }),
            secondary.clone(),
        );
        let outcome = fallback.request_campaign(&request(150)).unwrap();
        assert_eq!(outcome.chunks().len(), 2);
        assert!(fallback.primary_retired());
        assert_eq!(secondary.requests().len(), 1);
        fallback.request_campaign(&request(1)).unwrap();
        assert_eq!(
            fallback.primary().requests().len(),
            1,
            "a retired primary is skipped"
        );
        assert_eq!(secondary.requests().len(), 2);
    }
}
