//! What a client's HTTP calls did: counts by path and result, and a latency
//! histogram ([`RestClient::http_metrics`](crate::RestClient::http_metrics)).
//! The bridge serves them at `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The upper bounds, in seconds, of [`Histogram`]'s buckets (a last,
/// unbounded bucket holds the rest): from a loopback call to Marketo's
/// slowest answers.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A latency histogram over [`LATENCY_BUCKETS`].
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::metrics::Histogram;
/// let mut h = Histogram::default();
/// h.observe(Duration::from_millis(30));
/// h.observe(Duration::from_secs(90));
/// assert_eq!(h.count(), 2);
/// // Cumulative, as Prometheus counts them: one call within 50 ms.
/// assert_eq!(h.cumulative().find(|(le, _)| *le == 0.05), Some((0.05, 1)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last is past every bound.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum += seconds;
    }

    /// Observations made.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their total, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum
    }

    /// Each bound with the observations at or below it (`+Inf`, the last,
    /// is [`count`](Histogram::count)), as Prometheus writes `_bucket`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.counts.iter()).scan(0, |total, (le, n)| {
            *total += n;
            Some((le, *total))
        })
    }
}

/// A snapshot of a client's HTTP calls (identity token, look-ups, triggers,
/// schedules), shared by the client's clones.
///
/// ```
/// use marketo_sandbox::Sandbox;
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey};
///
/// let sandbox = Sandbox::start()?;
/// let rest = sandbox.rest_client()?;
/// rest.request_campaign(&CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200)?])?)?;
/// let metrics = rest.http_metrics();
/// let calls: Vec<_> = metrics.calls().map(|(path, result, n)| format!("{path} {result} {n}")).collect();
/// assert!(calls.contains(&"/rest/v1/campaigns/{id}/trigger.json 200 1".to_owned()), "{calls:?}");
/// assert_eq!(metrics.latency().count(), metrics.total());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpMetrics {
    calls: BTreeMap<(String, String), u64>,
    latency: Histogram,
}

impl HttpMetrics {
    /// Calls by path (numbers in it as `{id}`, never a query) and result
    /// (the HTTP status, or `transport_error` when no answer was read).
    pub fn calls(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.calls
            .iter()
            .map(|((path, result), n)| (path.as_str(), result.as_str(), *n))
    }

    /// Every call's latency, answer read.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Calls made.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// The shared, growing record behind [`HttpMetrics`].
#[derive(Debug, Default)]
pub(crate) struct Recorder(Mutex<HttpMetrics>);

impl Recorder {
    pub(crate) fn record(&self, url: &str, status: Option<u16>, elapsed: Duration) {
        let result = status.map_or_else(|| "transport_error".to_owned(), |s| s.to_string());
        let mut metrics = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *metrics.calls.entry((path_label(url), result)).or_default() += 1;
        metrics.latency.observe(elapsed);
    }

    pub(crate) fn snapshot(&self) -> HttpMetrics {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The path of `url`, without scheme, host or query (the identity call
/// carries credentials there), each all-digit segment as `{id}`.
fn path_label(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("/");
    path.split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_host_query_and_ids() {
        assert_eq!(
            path_label("https://123-ABC-456.mktorest.com/identity/oauth/token?grant_type=client_credentials&client_secret=s3cret"),
            "/identity/oauth/token"
        );
        assert_eq!(
            path_label("http://127.0.0.1:8080/rest/v1/campaigns/4496/trigger.json"),
            "/rest/v1/campaigns/{id}/trigger.json"
        );
        assert_eq!(path_label("http://h"), "/");
    }

    #[test]
    fn buckets_are_cumulative_and_end_with_every_call() {
        let mut h = Histogram::default();
        for ms in [0, 1, 2, 700, 120_000] {
            h.observe(Duration::from_millis(ms));
        }
        let buckets: Vec<_> = h.cumulative().collect();
        assert_eq!(buckets[0], (0.001, 2));
        assert_eq!(buckets[1], (0.005, 3));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 5)));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!((h.sum_seconds() - 120.703).abs() < 1e-9);
    }
}
