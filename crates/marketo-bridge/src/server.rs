//! Serving a [`Bridge`] over HTTP/1.1 with hyper on a tokio runtime of its
//! own: connections are read and written asynchronously, under header and
//! body read timeouts and a body size cap, and each SOAP call runs on
//! tokio's bounded blocking pool (the backend is the crate's blocking
//! client), so at most [`MAX_CALLS`] calls reach the backend at once.
//! Shutdown stops accepting, lets every call in hand finish and be
//! answered, and closes idle keep-alive connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::{watch, Semaphore};

use super::{Answer, Bridge, HttpRequest};
use marketo_campaign::CampaignRequester;
use marketo_campaign::Error;

/// Calls served at once (the blocking pool's size). Marketo admits 10
/// concurrent calls per instance; the REST client's limiter paces them
/// further, so more would only wait there.
pub(super) const MAX_CALLS: usize = 16;

/// Most bytes of an oversized request body read and thrown away before
/// its 413 is sent: 16 MiB. Clients that send their whole body before
/// reading an answer (Python's http.client, most SOAP stacks) then read the
/// 413 instead of failing on a closed connection. A body announced larger
/// (Content-Length) gets its 413 at once, and so does one that asked
/// `Expect: 100-continue` (it is not sent at all); either way the
/// connection is closed after the 413.
pub(super) const MAX_DISCARDED_BYTES: u64 = 16 << 20;

/// A running bridge. Dropping it shuts it down (as [`shutdown`](RunningBridge::shutdown)).
#[derive(Debug)]
pub struct RunningBridge {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningBridge {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves TLS ([`Bridge::serve_tls`]).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The SOAP endpoint on this address (`http://<addr>/soap/mktows/2_9`,
    /// `https://…` when it serves TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/soap/mktows/2_9", self.addr)
    }

    /// Stops accepting connections, lets the calls in hand finish and be
    /// answered, closes idle connections, and returns when all are done.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Serves until the process is stopped.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningBridge {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

pub(super) fn serve<R: CampaignRequester + Send + Sync + 'static>(
    bridge: Arc<Bridge<R>>,
    addr: SocketAddr,
    allow_non_loopback: bool,
    tls: Option<Tls>,
) -> Result<RunningBridge, Error> {
    if !allow_non_loopback && !addr.ip().is_loopback() {
        return Err(Error::Config(format!(
            "{addr} is not a loopback address; allow non-loopback addresses explicitly (and serve TLS, or put TLS in front)"
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // block_in_place hands a worker's other tasks to a new thread.
        .max_blocking_threads(MAX_CALLS + 2)
        .thread_name("marketo-bridge")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the bridge's runtime: {e}")))?;
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?
    };
    let is_tls = tls.is_some();
    let acceptor = tls.map(|tls| tokio_rustls::TlsAcceptor::from(tls.config));
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("marketo-bridge-accept".into())
        .spawn(move || {
            runtime.block_on(accept(listener, bridge, acceptor, stopped));
            // Calls still on the blocking pool finish before the runtime goes.
            drop(runtime);
        })
        .map_err(|e| Error::Config(format!("cannot start the bridge: {e}")))?;
    Ok(RunningBridge {
        addr,
        tls: is_tls,
        stop,
        thread: Some(thread),
    })
}

async fn accept<R: CampaignRequester + Send + Sync + 'static>(
    listener: tokio::net::TcpListener,
    bridge: Arc<Bridge<R>>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let read_timeout = bridge.read_timeout;
    let calls = Arc::new(Semaphore::new(MAX_CALLS));
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause, go on.
                    log::warn!("bridge: accepting a connection failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let bridge = Arc::clone(&bridge);
        let calls = Arc::clone(&calls);
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(Arc::clone(&bridge), Arc::clone(&calls), request));
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(read_timeout)
                .keep_alive(true);
            let served = match acceptor {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(err)) => {
                                log::debug!("bridge: TLS handshake failed: {err}");
                                return;
                            }
                            Err(_) => {
                                log::debug!("bridge: TLS handshake timed out");
                                return;
                            }
                        };
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(err) = served {
                log::debug!("bridge: connection ended: {err}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

type Body = Full<Bytes>;

async fn handle<R: CampaignRequester + Send + Sync + 'static>(
    bridge: Arc<Bridge<R>>,
    calls: Arc<Semaphore>,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let max = bridge.max_body;
    let length = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = length.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX));
    let expects_continue = request
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    // Not polling the body, hyper sends no "100 Continue": a client that
    // asked waits for the answer without sending the body.
    if too_large && (expects_continue || length.is_some_and(|n| n > MAX_DISCARDED_BYTES)) {
        return Ok(too_large_answer());
    }
    let (head, mut body) = request.into_parts();
    let header = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let owned = Owned {
        method: head.method.as_str().to_owned(),
        url: head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        host: header(HOST.as_str()),
        soap_action: header("soapaction"),
    };
    let read = async {
        if too_large {
            return Err(Unread::TooLarge);
        }
        match Limited::new(&mut body, max).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(Unread::TooLarge),
            Err(_) => Err(Unread::Unreadable),
        }
    };
    // One read timeout for the body, and for the rest of one too large.
    let deadline = tokio::time::Instant::now() + bridge.read_timeout;
    let body = match tokio::time::timeout_at(deadline, read).await {
        Err(_) => {
            return Ok(respond(Answer::text(
                408,
                "request body not read in time\n",
            )))
        }
        Ok(Err(Unread::TooLarge)) => {
            // Read the rest (within bounds) so that the client, done
            // sending, reads the 413.
            let _ = tokio::time::timeout_at(deadline, discard(&mut body)).await;
            return Ok(too_large_answer());
        }
        Ok(Err(Unread::Unreadable)) => {
            return Ok(respond(Answer::text(400, "unreadable request\n")))
        }
        Ok(Ok(body)) => body,
    };
    if owned.method != "POST" {
        // Health, metrics, the WSDL: no backend call, answered here.
        return Ok(respond(bridge.answer(&owned.as_request(&body))));
    }
    // The backend is blocking: at most MAX_CALLS calls at once, each on
    // its worker thread, whose other tasks tokio hands to another thread
    // meanwhile (no hand-off of the call itself: that costs two wake-ups).
    let Ok(_place) = calls.acquire().await else {
        return Ok(respond(Answer::text(503, "shutting down\n")));
    };
    let answer = tokio::task::block_in_place(|| bridge.answer(&owned.as_request(&body)));
    Ok(respond(answer))
}

/// Why a request's body was not read.
enum Unread {
    /// Over the bridge's limit.
    TooLarge,
    /// The connection failed while it was read.
    Unreadable,
}

/// Reads and throws away the rest of a body, up to
/// [`MAX_DISCARDED_BYTES`]; whether it ended within them.
async fn discard(body: &mut Incoming) -> bool {
    let mut left = MAX_DISCARDED_BYTES;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return false;
        };
        if let Some(data) = frame.data_ref() {
            let Some(rest) = left.checked_sub(u64::try_from(data.len()).unwrap_or(u64::MAX)) else {
                return false;
            };
            left = rest;
        }
    }
    true
}

/// 413, and the connection closed after it (what is left of the body is
/// not read).
fn too_large_answer() -> Response<Body> {
    let mut response = respond(Answer::text(413, "request too large\n"));
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request's parts, owned, to cross onto the blocking pool.
struct Owned {
    method: String,
    url: String,
    host: Option<String>,
    soap_action: Option<String>,
}

impl Owned {
    fn as_request<'a>(&'a self, body: &'a [u8]) -> HttpRequest<'a> {
        HttpRequest {
            method: &self.method,
            url: &self.url,
            host: self.host.as_deref(),
            soap_action: self.soap_action.as_deref(),
            body,
        }
    }
}

fn respond(answer: Answer) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}

/// A certificate chain and its private key, checked and ready to serve.
pub(super) struct Tls {
    config: Arc<tokio_rustls::rustls::ServerConfig>,
}

impl Tls {
    /// Reads the PEM certificate chain (leaf first) and private key
    /// (PKCS#8, PKCS#1 or SEC1, unencrypted) into a TLS 1.2 / 1.3 server
    /// configuration. The messages never quote the key.
    pub(super) fn new(certificate: &[u8], private_key: &[u8]) -> Result<Self, Error> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let chain = CertificateDer::pem_slice_iter(certificate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Config(format!("the TLS certificate file is not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(Error::Config(
                "the TLS certificate file holds no PEM CERTIFICATE".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key).map_err(|_| {
            Error::Config(
                "the TLS key file holds no unencrypted PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)".into(),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS set-up failed: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                Error::Config(format!(
                    "the TLS certificate and key do not make a usable pair: {e}"
                ))
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}
