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
    /// Counts one call. A call counted before under the same labels (every
    /// call but a client's first few) is counted without allocating.
    pub(crate) fn record(&self, url: &str, status: Option<u16>, elapsed: Duration) {
        let mut digits = [0u8; 10];
        let result = match status {
            Some(status) => crate::request::decimal(u32::from(status), &mut digits),
            None => "transport_error",
        };
        let path = url_path(url);
        let mut metrics = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let known = metrics
            .calls
            .iter_mut()
            .find(|((label, r), _)| r == result && labels(path, label));
        match known {
            Some((_, n)) => *n += 1,
            None => {
                metrics
                    .calls
                    .insert((path_label(url), result.to_owned()), 1);
            }
        }
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
/// carries credentials there).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

/// A path's segment as labelled: all digits → `{id}`.
fn segment_label(segment: &str) -> &str {
    if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
        "{id}"
    } else {
        segment
    }
}

/// The label of `url`: its [path](url_path), each all-digit segment as
/// `{id}`.
fn path_label(url: &str) -> String {
    url_path(url)
        .split('/')
        .map(segment_label)
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `label` is the label of `path`, compared segment by segment.
fn labels(path: &str, label: &str) -> bool {
    let mut segments = path.split('/').map(segment_label);
    let mut wanted = label.split('/');
    loop {
        match (segments.next(), wanted.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
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
    fn a_path_matches_its_label_only() {
        let url = "http://127.0.0.1:8080/rest/v1/campaigns/4496/trigger.json?x=1";
        assert!(labels(url_path(url), &path_label(url)));
        assert!(labels(
            url_path(url),
            "/rest/v1/campaigns/{id}/trigger.json"
        ));
        assert!(!labels(url_path(url), "/rest/v1/campaigns/{id}"));
        assert!(!labels(
            url_path(url),
            "/rest/v1/campaigns/4496/trigger.json"
        ));
        assert!(!labels(
            url_path(url),
            "/rest/v1/campaigns/{id}/trigger.json/x"
        ));
        assert!(labels(url_path("http://h"), "/"));
        // Results are labelled with the status's digits.
        let mut buf = [0; 10];
        assert_eq!(crate::request::decimal(200, &mut buf), "200");
        assert_eq!(crate::request::decimal(0, &mut buf), "0");
        assert_eq!(crate::request::decimal(65535, &mut buf), "65535");
    }

    #[test]
    fn calls_are_counted_by_label_and_result() {
        let recorder = Recorder::default();
        for (url, status) in [
            ("http://h/rest/v1/campaigns/1/trigger.json", Some(200)),
            ("http://h/rest/v1/campaigns/2/trigger.json", Some(200)),
            ("http://h/rest/v1/campaigns/2/trigger.json", Some(606)),
            ("http://h/rest/v1/campaigns/2/trigger.json", None),
            ("http://h/soap/mktows/2_9", Some(200)),
        ] {
            recorder.record(url, status, Duration::from_millis(1));
        }
        let metrics = recorder.snapshot();
        let calls: Vec<_> = metrics.calls().collect();
        assert_eq!(
            calls,
            [
                ("/rest/v1/campaigns/{id}/trigger.json", "200", 2),
                ("/rest/v1/campaigns/{id}/trigger.json", "606", 1),
                ("/rest/v1/campaigns/{id}/trigger.json", "transport_error", 1),
                ("/soap/mktows/2_9", "200", 1),
            ]
        );
        assert_eq!(metrics.latency().count(), 5);
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
