//! The HTTP stack shared by the backends: one ureq `Agent`, capped bodies,
//! and transport failures classified by what they say about delivery.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::Agent;

use crate::error::{Delivery, Error};
use crate::limiter::{Limiter, Permit, RateLimit};
use crate::metrics::{HttpMetrics, Recorder};
use crate::retry::RetryPolicy;

/// Default time allowed to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for a whole exchange, from connect to the last body byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on a response body: Marketo's answers are a few kilobytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// How a client makes its HTTP calls: timeouts, the answer size cap, the
/// retry policy, client-side pacing, and optionally your own
/// [`ureq::Agent`]. One value, handed to either client's builder with
/// `http_config` (the builders' own setters of the same names are
/// shortcuts to these). Every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use marketo_campaign::{HttpConfig, RateLimit, RestClient, RetryPolicy};
/// let config = HttpConfig::default()
///     .timeout(Duration::from_secs(30))
///     .retry(RetryPolicy::default().max_attempts(3))
///     .rate_limit(Some(RateLimit::default()));
/// let client = RestClient::builder("https://123-ABC-456.mktorest.com", "id", "secret")
///     .http_config(config)
///     .build()?;
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: u64,
    pub(crate) allow_plain_http: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) agent: Option<Agent>,
    #[cfg(feature = "redis")]
    pub(crate) shared: Option<crate::shared_limiter::SharedLimiter>,
}

impl Default for HttpConfig {
    /// Connect timeout 10 s, whole-call timeout 60 s, answers up to 1 MiB,
    /// `https://` only (plain `http://` on loopback), [`RetryPolicy::default`],
    /// [`RateLimit::default`] (Marketo's 100 calls per 20 s, 10 in flight),
    /// an agent of the client's own.
    fn default() -> Self {
        HttpConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            allow_plain_http: false,
            retry: RetryPolicy::default(),
            rate_limit: Some(RateLimit::default()),
            agent: None,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }
}

impl HttpConfig {
    /// Time allowed to open a connection. Default: 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one whole call, from connect to the last byte of
    /// the answer. Default: 60 s. A call that times out after sending has
    /// an unknown outcome. With the agent the client builds, kept to
    /// within 1/64 of it (at most 1 s): a blocked read or write may end
    /// that much after the deadline, so that kept-alive calls need not
    /// re-arm the socket's timeouts (through an HTTP proxy, its CONNECT
    /// exchange too). Your own [`agent`](HttpConfig::agent) keeps ureq's
    /// exact deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest answer accepted, in bytes. Default: 1 MiB.
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// When to repeat a failed call. Default: [`RetryPolicy::default`]
    /// (only calls that certainly did not run, 5 attempts, 2-minute budget).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Client-side pacing of API calls, shared by the client's clones;
    /// `None` sends as fast as asked. Default: Marketo's limits, 100 calls
    /// per 20 s and 10 in flight.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Allows a plain `http://` endpoint that is not on loopback.
    /// Default: off, because credentials and lead data would cross the
    /// network in clear text.
    pub fn danger_allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Keeps the [`rate_limit`](HttpConfig::rate_limit) in Redis, shared by
    /// every process pointed at the same Redis and instance (feature
    /// `redis`). Default: none, this process paces itself.
    #[cfg(feature = "redis")]
    pub fn shared_limiter(mut self, shared: crate::SharedLimiter) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Sends through your own agent (its proxy, TLS roots, connection pool,
    /// resolver) instead of one the client builds. Default: none, the
    /// client builds its own from the settings above.
    ///
    /// Whatever the agent's configuration, each call is made with HTTP
    /// statuses read as answers (a SOAP fault comes on HTTP 500), no
    /// redirects (a redirected POST would lose its body), and this config's
    /// timeouts; the size cap applies as set here.
    pub fn agent(mut self, agent: Agent) -> Self {
        self.agent = Some(agent);
        self
    }
}

/// The setters of [`HttpConfig`] on the client builders (each has a field
/// `http: HttpConfig`), as shortcuts, plus `http_config` to hand a whole one.
macro_rules! http_setters {
    () => {
        /// All HTTP settings at once (replaces any set before).
        /// Default: [`HttpConfig::default`](crate::HttpConfig).
        pub fn http_config(mut self, config: crate::HttpConfig) -> Self {
            self.http = config;
            self
        }

        /// Time allowed to open a connection. Default: 10 s.
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.http = self.http.connect_timeout(timeout);
            self
        }

        /// Time allowed for one whole call, from connect to the last byte of
        /// the answer. Default: 60 s. A call that times out after sending has
        /// an unknown outcome.
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.http = self.http.timeout(timeout);
            self
        }

        /// Largest answer accepted, in bytes. Default: 1 MiB.
        pub fn max_response_bytes(mut self, bytes: u64) -> Self {
            self.http = self.http.max_response_bytes(bytes);
            self
        }

        /// When to repeat a failed call. Default: [`RetryPolicy::default`](crate::RetryPolicy::default)
        /// (only calls that certainly did not run, 5 attempts, 2-minute budget).
        pub fn retry(mut self, policy: crate::RetryPolicy) -> Self {
            self.http = self.http.retry(policy);
            self
        }

        /// Client-side pacing of API calls, shared by the client's clones;
        /// `None` sends as fast as asked. Default: Marketo's limits, 100 calls
        /// per 20 s and 10 in flight.
        pub fn rate_limit(mut self, limit: Option<crate::RateLimit>) -> Self {
            self.http = self.http.rate_limit(limit);
            self
        }

        /// Allows a plain `http://` endpoint that is not on loopback.
        /// Default: off, because credentials and lead data would cross the
        /// network in clear text.
        pub fn danger_allow_plain_http(mut self, allow: bool) -> Self {
            self.http = self.http.danger_allow_plain_http(allow);
            self
        }

        /// Keeps the rate limit in Redis, shared by every process pointed
        /// at the same Redis and instance (feature `redis`; see
        /// [`SharedLimiter`](crate::SharedLimiter)). Default: none.
        #[cfg(feature = "redis")]
        pub fn shared_limiter(mut self, shared: crate::SharedLimiter) -> Self {
            self.http = self.http.shared_limiter(shared);
            self
        }
    };
}
pub(crate) use http_setters;

/// Reads a non-blank environment variable.
pub(crate) fn env_var(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::Config(format!("{name} is not set")))
}

/// How a client makes its API calls: one connection pool, a retry policy,
/// and a rate limiter shared by the client's clones.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    http: Http,
    retry: RetryPolicy,
    limiter: Option<Arc<Limiter>>,
    /// The limit kept in Redis, with the call timeout its leases outlive.
    #[cfg(feature = "redis")]
    shared: Option<(crate::shared_limiter::SharedLimiter, RateLimit, Duration)>,
}

/// A call's place: in this process's limiter, or in the shared one.
enum Slot<'a> {
    #[allow(dead_code)] // held for its Drop
    Local(Permit<'a>),
    #[cfg(feature = "redis")]
    #[allow(dead_code)] // held for its Drop
    Shared(crate::shared_limiter::SharedPermit),
}

impl Caller {
    pub(crate) fn new(settings: &HttpConfig) -> Self {
        Caller {
            http: Http::new(settings),
            retry: settings.retry.clone(),
            limiter: settings
                .rate_limit
                .map(|limit| Arc::new(Limiter::new(limit))),
            #[cfg(feature = "redis")]
            shared: settings.shared.clone().map(|shared| {
                (
                    shared,
                    settings.rate_limit.unwrap_or_default(),
                    settings.timeout,
                )
            }),
        }
    }

    /// The connection pool, unpaced (for calls Marketo does not count).
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// Runs `call` as the retry policy allows.
    pub(crate) fn with_retries<T>(
        &self,
        what: &dyn std::fmt::Display,
        call: impl FnMut(u32) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.retry.run(what, call)
    }

    /// A place from the limiter, if there is one; `Throttled` (not sent)
    /// when its wait budget passes first.
    fn permit(&self) -> Result<Option<Slot<'_>>, Error> {
        #[cfg(feature = "redis")]
        if let Some((shared, limit, timeout)) = &self.shared {
            match shared.acquire(limit, *timeout)? {
                crate::shared_limiter::Shared::Permit(permit) => {
                    return Ok(Some(Slot::Shared(permit)))
                }
                crate::shared_limiter::Shared::Local => {}
            }
        }
        let Some(limiter) = self.limiter.as_deref() else {
            return Ok(None);
        };
        limiter
            .acquire()
            .map(|p| Some(Slot::Local(p)))
            .map_err(|held| match held {
                crate::limiter::Held::Limit(limit) => Error::Throttled {
                    limit,
                    budget: limiter.budget().unwrap_or_default(),
                },
                crate::limiter::Held::Quota { quota, resets_at } => Error::QuotaSpent {
                    quota,
                    resets_at: resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                },
            })
    }

    /// A paced POST.
    pub(crate) fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, Error> {
        let _permit = self.permit()?;
        self.http.post(url, headers, body)
    }

    /// A paced GET.
    pub(crate) fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, Error> {
        let _permit = self.permit()?;
        self.http.get(url, headers)
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The `Retry-After` header, as sent (for a 429).
    pub(crate) retry_after: Option<String>,
}

/// One agent (one connection pool), shared by clones.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    agent: Agent,
    /// The caller's own agent: each request overrides what must hold.
    foreign: bool,
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: u64,
    /// What the calls did, shared by clones.
    recorder: Arc<Recorder>,
}

impl Http {
    pub(crate) fn new(settings: &HttpConfig) -> Self {
        let (agent, foreign) = match &settings.agent {
            Some(agent) => (agent.clone(), true),
            None => {
                let config = Agent::config_builder()
                    .timeout_connect(Some(settings.connect_timeout))
                    .timeout_global(Some(settings.timeout))
                    // SOAP faults come with HTTP 500: read the body, do not error.
                    .http_status_as_error(false)
                    // A redirected POST would lose its body or change its method.
                    .max_redirects(0)
                    .user_agent(concat!("marketo-campaign/", env!("CARGO_PKG_VERSION")))
                    .build();
                let agent = Agent::with_parts(
                    config,
                    ureq::unversioned::transport::Connector::chain(
                        ureq::unversioned::transport::DefaultConnector::new(),
                        SteadyTimeouts::for_timeout(settings.timeout),
                    ),
                    LiteralFirstResolver::default(),
                );
                (agent, false)
            }
        };
        Http {
            agent,
            foreign,
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
            max_response_bytes: settings.max_response_bytes,
            recorder: Arc::default(),
        }
    }

    /// A caller's agent keeps its pool, proxy and TLS, but answers are
    /// read whatever their status, redirects are not followed, and this
    /// client's timeouts apply.
    fn overridden<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if !self.foreign {
            return request;
        }
        request
            .config()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_global(Some(self.timeout))
            .build()
    }

    /// POSTs `body` and reads the answer.
    pub(crate) fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, Error> {
        let mut request = self.overridden(self.agent.post(url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let started = Instant::now();
        let answer = request
            .send(body)
            .map_err(|e| classify(e, false))
            .and_then(|response| self.read(response));
        self.recorded(url, started, answer)
    }

    /// GETs `url` and reads the answer.
    pub(crate) fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, Error> {
        let mut request = self.overridden(self.agent.get(url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let started = Instant::now();
        let answer = request
            .call()
            .map_err(|e| classify(e, false))
            .and_then(|response| self.read(response));
        self.recorded(url, started, answer)
    }

    fn recorded(
        &self,
        url: &str,
        started: Instant,
        answer: Result<HttpResponse, Error>,
    ) -> Result<HttpResponse, Error> {
        let status = answer.as_ref().ok().map(|response| response.status);
        self.recorder.record(url, status, started.elapsed());
        answer
    }

    /// What this pool's calls did so far.
    pub(crate) fn metrics(&self) -> HttpMetrics {
        self.recorder.snapshot()
    }

    fn read(&self, response: ureq::http::Response<ureq::Body>) -> Result<HttpResponse, Error> {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()
            .map_err(|e| classify(e, true))?;
        Ok(HttpResponse {
            status,
            body,
            retry_after,
        })
    }
}

/// ureq's default resolver spawns a thread per call whenever a timeout
/// applies to name resolution (`timeout_global` does), even for an IP
/// literal and even when a pooled connection is then reused. IP literals are
/// answered here, synchronously; names go to the default resolver.
#[derive(Debug, Default)]
struct LiteralFirstResolver(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for LiteralFirstResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(authority) = uri.authority() {
            let host = authority.host();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let port = authority.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            });
            if let (Ok(ip), Some(port)) = (host.parse::<std::net::IpAddr>(), port) {
                let mut addrs = self.empty();
                addrs.push(std::net::SocketAddr::new(ip, port));
                return Ok(addrs);
            }
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// Holds a connection's socket timeouts steady from call to call.
///
/// With a whole-call timeout, ureq hands each read and write the time left
/// until the deadline, which differs on every call, and sets it on the
/// socket when it changed: three `setsockopt` system calls per call on a
/// kept-alive connection. This connector, last in the chain, rounds the
/// time left up to a multiple of a quantum (1/64 of the whole-call
/// timeout, 1 ms to 1 s), so consecutive calls hand the socket the same
/// value and ureq skips the system call. A blocked read or write may so
/// outlast the deadline by less than one quantum; an expired deadline
/// (zero left) is passed on unchanged and fails as before.
#[derive(Debug)]
struct SteadyTimeouts {
    quantum: Duration,
}

impl SteadyTimeouts {
    fn for_timeout(timeout: Duration) -> Self {
        SteadyTimeouts {
            quantum: (timeout / 64).clamp(Duration::from_millis(1), Duration::from_secs(1)),
        }
    }
}

impl<In: ureq::unversioned::transport::Transport> ureq::unversioned::transport::Connector<In>
    for SteadyTimeouts
{
    type Out = Steady<In>;

    fn connect(
        &self,
        _details: &ureq::unversioned::transport::ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Steady {
            inner,
            quantum: self.quantum,
        }))
    }
}

/// A transport whose timeouts [`SteadyTimeouts`] rounds.
#[derive(Debug)]
struct Steady<T> {
    inner: T,
    quantum: Duration,
}

impl<T> Steady<T> {
    fn rounded(
        &self,
        mut timeout: ureq::unversioned::transport::NextTimeout,
    ) -> ureq::unversioned::transport::NextTimeout {
        use ureq::unversioned::transport::time::Duration as Left;
        if let Left::Exact(left) = timeout.after {
            timeout.after = Left::Exact(round_up(left, self.quantum));
        }
        timeout
    }
}

/// `left` rounded up to a multiple of `quantum`; zero stays zero.
fn round_up(left: Duration, quantum: Duration) -> Duration {
    let q = quantum.as_nanos().max(1);
    let steps = left.as_nanos().div_ceil(q);
    u64::try_from(steps * q).map_or(left, Duration::from_nanos)
}

impl<T: ureq::unversioned::transport::Transport> ureq::unversioned::transport::Transport
    for Steady<T>
{
    fn buffers(&mut self) -> &mut dyn ureq::unversioned::transport::Buffers {
        self.inner.buffers()
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<(), ureq::Error> {
        let timeout = self.rounded(timeout);
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(
        &mut self,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<bool, ureq::Error> {
        let timeout = self.rounded(timeout);
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// What a ureq failure says about delivery. Before the request left (DNS,
/// connect, TLS set-up) nothing was sent; after, anything may have happened.
fn classify(err: ureq::Error, reading_body: bool) -> Error {
    use ureq::Timeout;
    let not_sent = !reading_body
        && match &err {
            ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::BadUri(_)
            | ureq::Error::Http(_)
            | ureq::Error::InvalidProxyUrl
            | ureq::Error::ConnectProxyFailed(_)
            | ureq::Error::RequireHttpsOnly(_)
            | ureq::Error::TlsRequired => true,
            ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => true,
            ureq::Error::Io(io) => io.kind() == io::ErrorKind::ConnectionRefused,
            _ => false,
        };
    let message = match &err {
        ureq::Error::BodyExceedsLimit(limit) => {
            format!("the response is larger than the {limit}-byte cap")
        }
        other => other.to_string(),
    };
    Error::Transport {
        delivery: if not_sent {
            Delivery::NotSent
        } else {
            Delivery::Unknown
        },
        message,
        source: Some(crate::error::Cause::new(err)),
    }
}

/// Checks an endpoint URL: `https://`, or `http://` on loopback, or `http://`
/// anywhere when the caller opted in.
pub(crate) fn check_endpoint(what: &str, url: &str, allow_plain_http: bool) -> Result<(), Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::Config(format!("{what} {url:?} is not an http(s) URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(Error::Config(format!("{what} {url:?} has no host")));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if allow_plain_http || is_loopback(authority) => Ok(()),
        "http" => Err(Error::Config(format!(
            "{what} {url:?} uses plain http; use https, or opt in with danger_allow_plain_http"
        ))),
        _ => Err(Error::Config(format!(
            "{what} {url:?} is not an http(s) URL"
        ))),
    }
}

fn is_loopback(authority: &str) -> bool {
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_rounded_up_to_the_quantum() {
        let q = SteadyTimeouts::for_timeout(Duration::from_secs(60)).quantum;
        assert_eq!(q, Duration::from_micros(937_500));
        let ms = Duration::from_millis;
        assert_eq!(round_up(Duration::ZERO, q), Duration::ZERO);
        assert_eq!(round_up(Duration::from_nanos(1), q), q);
        assert_eq!(round_up(ms(59_999), q), Duration::from_secs(60));
        assert_eq!(round_up(ms(59_100), q), Duration::from_secs(60));
        assert_eq!(
            round_up(ms(59_000), q),
            ms(59_062) + Duration::from_micros(500)
        );
        // Short timeouts keep a fine quantum; long ones at most a second.
        let short = SteadyTimeouts::for_timeout(ms(500)).quantum;
        assert_eq!(
            short,
            Duration::from_micros(7_812) + Duration::from_nanos(500)
        );
        assert_eq!(SteadyTimeouts::for_timeout(ms(10)).quantum, ms(1));
        let long = SteadyTimeouts::for_timeout(Duration::from_secs(3600)).quantum;
        assert_eq!(long, Duration::from_secs(1));
        assert_eq!(round_up(ms(3_599_001), long), Duration::from_secs(3600));
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint(
            "e",
            "https://123-ABC-456.mktoapi.com/soap/mktows/2_9",
            false
        )
        .is_ok());
        assert!(check_endpoint("e", "http://127.0.0.1:8080/soap", false).is_ok());
        assert!(check_endpoint("e", "http://localhost/soap", false).is_ok());
        assert!(check_endpoint("e", "http://[::1]:80/soap", false).is_ok());
        assert!(check_endpoint("e", "http://example.com/soap", false).is_err());
        assert!(check_endpoint("e", "http://127.0.0.1.evil.com/soap", false).is_err());
        assert!(check_endpoint("e", "http://example.com/soap", true).is_ok());
        assert!(check_endpoint("e", "ftp://example.com/", true).is_err());
        assert!(check_endpoint("e", "example.com", true).is_err());
    }
}
