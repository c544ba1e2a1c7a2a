//! Serving a [`Bridge`] over HTTP/1.1 with `tiny_http`: a fixed pool of
//! worker threads (so at most that many calls reach the backend at once),
//! each answering one request at a time; shutdown lets them finish the
//! call in hand.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Answer, Bridge, HttpRequest};
use crate::error::Error;
use crate::requester::CampaignRequester;

/// Worker threads: calls served at once. Marketo admits 10 concurrent calls
/// per instance; the REST client's limiter paces them further.
const WORKERS: usize = 16;

/// A running bridge. Dropping it shuts it down.
#[derive(Debug)]
pub struct RunningBridge {
    addr: SocketAddr,
    tls: bool,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl RunningBridge {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves TLS (`Bridge::serve_tls`, feature `bridge-tls`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The SOAP endpoint on this address (`http://<addr>/soap/mktows/2_9`,
    /// `https://…` when it serves TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/soap/mktows/2_9", self.addr)
    }

    /// Stops accepting calls and waits for the calls in hand to finish.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Serves until the process is stopped.
    pub fn wait(mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
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
    #[cfg(feature = "bridge-tls")] tls: Option<Tls>,
) -> Result<RunningBridge, Error> {
    if !allow_non_loopback && !addr.ip().is_loopback() {
        return Err(Error::Config(format!(
            "{addr} is not a loopback address; allow non-loopback addresses explicitly (and serve TLS, or put TLS in front)"
        )));
    }
    #[cfg(feature = "bridge-tls")]
    let (is_tls, server) = (
        tls.is_some(),
        match tls {
            None => tiny_http::Server::http(addr),
            Some(tls) => https(addr, tls)?,
        },
    );
    #[cfg(not(feature = "bridge-tls"))]
    let (is_tls, server) = (false, tiny_http::Server::http(addr));
    let server = server.map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Config("the bridge is not listening on IP".into()))?;
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = (0..WORKERS)
        .map(|_| {
            let server = Arc::clone(&server);
            let bridge = Arc::clone(&bridge);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(request)) => handle(&bridge, request),
                        Ok(None) => {}
                        Err(err) => log::debug!("bridge: accepting failed: {err}"),
                    }
                }
            })
        })
        .collect();
    Ok(RunningBridge {
        addr,
        tls: is_tls,
        stop,
        workers,
    })
}

/// A certificate chain and its private key, PEM (checked by [`Tls::new`]).
#[cfg(feature = "bridge-tls")]
pub(super) struct Tls {
    certificate: Vec<u8>,
    private_key: Vec<u8>,
}

#[cfg(feature = "bridge-tls")]
impl Tls {
    /// Checks what `tiny_http` would otherwise panic on: at least one
    /// `CERTIFICATE`, and a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE
    /// KEY`) key, unencrypted. The messages never quote the key.
    pub(super) fn new(certificate: &[u8], private_key: &[u8]) -> Result<Self, Error> {
        let has = |pem: &[u8], label: &str| {
            let begin = format!("-----BEGIN {label}-----");
            pem.windows(begin.len()).any(|w| w == begin.as_bytes())
        };
        if !has(certificate, "CERTIFICATE") {
            return Err(Error::Config(
                "the TLS certificate file holds no PEM CERTIFICATE".into(),
            ));
        }
        if !has(private_key, "PRIVATE KEY") && !has(private_key, "RSA PRIVATE KEY") {
            return Err(Error::Config(
                "the TLS key file holds no unencrypted PKCS#8 (BEGIN PRIVATE KEY) or RSA (BEGIN RSA PRIVATE KEY) key; convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
            ));
        }
        Ok(Tls {
            certificate: certificate.to_vec(),
            private_key: private_key.to_vec(),
        })
    }
}

#[cfg(feature = "bridge-tls")]
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

#[cfg(feature = "bridge-tls")]
type Listening = Result<tiny_http::Server, Box<dyn std::error::Error + Send + Sync + 'static>>;

/// `tiny_http::Server::https`, whose key parsing panics on some malformed
/// PEM: the panic becomes an error.
#[cfg(feature = "bridge-tls")]
fn https(addr: SocketAddr, tls: Tls) -> Result<Listening, Error> {
    let config = tiny_http::SslConfig {
        certificate: tls.certificate,
        private_key: tls.private_key,
    };
    std::panic::catch_unwind(move || tiny_http::Server::https(addr, config)).map_err(|_| {
        Error::Config("the TLS certificate or key could not be read (malformed PEM)".into())
    })
}

fn header<'r>(request: &'r tiny_http::Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn handle<R: CampaignRequester>(bridge: &Bridge<R>, mut request: tiny_http::Request) {
    let max = bridge.max_body;
    let answer = if request.body_length().is_some_and(|n| n > max) {
        Answer::text(413, "request too large\n")
    } else {
        let mut body = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        match request.as_reader().take(limit).read_to_end(&mut body) {
            Err(_) => Answer::text(400, "unreadable request\n"),
            Ok(_) if body.len() > max => Answer::text(413, "request too large\n"),
            Ok(_) => {
                let method = request.method().as_str().to_owned();
                let url = request.url().to_owned();
                bridge.answer(&HttpRequest {
                    method: &method,
                    url: &url,
                    host: header(&request, "Host"),
                    soap_action: header(&request, "SOAPAction"),
                    body: &body,
                })
            }
        }
    };
    let mut response =
        tiny_http::Response::from_data(answer.body.into_bytes()).with_status_code(answer.status);
    if let Ok(content_type) =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], answer.content_type.as_bytes())
    {
        response = response.with_header(content_type);
    }
    if let Err(err) = request.respond(response) {
        log::debug!("bridge: answering failed: {err}");
    }
}
