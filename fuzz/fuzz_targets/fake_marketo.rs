//! A scripted Marketo on loopback for the fuzz targets that drive the REST
//! client end to end: the identity service, `campaigns.json` and
//! `leads.json` answer whatever the current input says; `trigger.json`
//! accepts and is counted. One server per process, started on first use;
//! libFuzzer runs one input at a time, so the script is simply replaced.
//!
//! Only the public API is used, so the real token cache, look-ups and
//! classification run exactly as in production.

// Each target uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use marketo_campaign::{RestClient, RetryPolicy};

/// The client secret; it must never appear in an error message.
pub const SECRET: &str = "s3cr3t-fuzz";

/// What each path answers: HTTP status and body.
#[derive(Clone, Default)]
pub struct Script {
    pub identity: (u16, Vec<u8>),
    pub campaigns: (u16, Vec<u8>),
    pub leads: (u16, Vec<u8>),
}

/// A valid token answer.
pub const TOKEN: &[u8] =
    br#"{"access_token":"t0k3n","token_type":"bearer","expires_in":3600,"scope":"x"}"#;
/// An empty page (answered for every page after the first, so that a
/// fuzzed `nextPageToken` costs one extra request, not a thousand).
const EMPTY_PAGE: &[u8] = br#"{"requestId":"1#1","success":true,"result":[]}"#;
const TRIGGERED: &[u8] = br#"{"requestId":"1#1","success":true,"result":[{"id":4496}]}"#;

struct Fake {
    addr: SocketAddr,
    script: Mutex<Script>,
    triggers: AtomicUsize,
}

fn fake() -> &'static Fake {
    static FAKE: OnceLock<&'static Fake> = OnceLock::new();
    FAKE.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let fake: &'static Fake = Box::leak(Box::new(Fake {
            addr: listener.local_addr().expect("local address"),
            script: Mutex::new(Script::default()),
            triggers: AtomicUsize::new(0),
        }));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(fake, stream);
            }
        });
        fake
    })
}

/// Reads one request (head and `Content-Length` body), answers it, closes.
fn serve(fake: &Fake, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    std::io::copy(&mut reader.by_ref().take(length as u64), &mut std::io::sink())?;
    let target = request_line.split(' ').nth(1).unwrap_or_default();
    let script = fake
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let (status, body) = if target.starts_with("/identity/oauth/token") {
        script.identity
    } else if target.contains("nextPageToken=") {
        (200, EMPTY_PAGE.to_vec())
    } else if target.starts_with("/rest/v1/campaigns.json") {
        script.campaigns
    } else if target.starts_with("/rest/v1/leads.json") {
        script.leads
    } else if target.ends_with("/trigger.json") {
        fake.triggers.fetch_add(1, Ordering::SeqCst);
        (200, TRIGGERED.to_vec())
    } else {
        (404, b"not found".to_vec())
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Sets what the fake answers from now on.
pub fn script(script: Script) {
    *fake()
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = script;
}

/// How many `trigger.json` calls the fake has received so far.
pub fn triggers() -> usize {
    fake().triggers.load(Ordering::SeqCst)
}

/// A fresh client (empty token and campaign caches) for the fake: no
/// retries, no pacing.
pub fn client() -> RestClient {
    RestClient::builder(format!("http://{}", fake().addr), "client-id", SECRET)
        .retry(RetryPolicy::never())
        .rate_limit(None)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a loopback client builds")
}

/// The HTTP status an input's first byte picks.
pub fn status(pick: u8) -> u16 {
    [200, 200, 200, 500, 502, 404, 401, 414][usize::from(pick % 8)]
}
