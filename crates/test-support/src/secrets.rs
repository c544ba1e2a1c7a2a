//! Secrets never shown: a capturing logger at `Trace` that records every
//! log line of the test binary (the crate's, the sandbox's, ureq's), a
//! panic hook that records every panic, and [`Secrets`], which checks
//! texts, logs and panics for a test's secrets, in clear or
//! percent-encoded. The access token is read from the sandbox's identity
//! service with a raw socket, so that fetching it logs nothing.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, Once, PoisonError};
use std::time::Duration;

/// A key no sandbox accepts; it must not leak either.
pub const WRONG_KEY: &str = "WrongEncryptionKey0123456789ABCDEFfedcba";
/// A client secret no sandbox accepts; it must not leak either.
pub const WRONG_SECRET: &str = "wrongClientSecretQ7x9Zk2Lm4Np";

struct Capture;

/// Every log record: target, level, message.
static LOGS: Mutex<Vec<(String, log::Level, String)>> = Mutex::new(Vec::new());
/// Every panic: thread name and message.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CAPTURE: Capture = Capture;
static INIT: Once = Once::new();

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LOGS.lock().unwrap_or_else(PoisonError::into_inner).push((
            record.target().to_owned(),
            record.level(),
            record.args().to_string(),
        ));
    }

    fn flush(&self) {}
}

/// Every log record captured so far: target, level, message.
pub fn logs() -> Vec<(String, log::Level, String)> {
    LOGS.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Captures every log record (at `Trace`) and every panic of this test
/// binary from now on; call it first in each test.
pub fn init() {
    INIT.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned();
            PANICS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{thread}: {info}"));
            default(info);
        }));
    });
}

/// The secrets of a test: the sandbox's key and secret, the wrong ones, and
/// every access token seen.
pub struct Secrets(Vec<String>);

impl Secrets {
    /// The secrets of a sandbox: its SOAP encryption key and REST client
    /// secret, and the wrong ones.
    pub fn new(encryption_key: &str, client_secret: &str) -> Self {
        Secrets(vec![
            encryption_key.to_owned(),
            client_secret.to_owned(),
            WRONG_KEY.to_owned(),
            WRONG_SECRET.to_owned(),
        ])
    }

    /// Adds the current access token of the sandbox at `addr` (the one
    /// clients hold) for `client_id` and this test's client secret.
    pub fn add_token(&mut self, addr: SocketAddr, client_id: &str) {
        let token = current_token(addr, client_id, &self.0[1]);
        assert!(token.len() > 16, "{token}");
        if !self.0.contains(&token) {
            self.0.push(token);
        }
    }

    /// How many secrets are known (tokens seen count once each).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no secret is known (never: [`Secrets::new`] holds four).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secrets `text` shows, in clear or percent-encoded.
    pub fn found_in(&self, text: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|s| text.contains(s.as_str()) || text.contains(&percent_encode(s)))
            .map(String::as_str)
            .collect()
    }

    /// Fails the test when `text` shows a secret.
    pub fn assert_absent(&self, what: &str, text: &str) {
        let found = self.found_in(text);
        assert!(found.is_empty(), "{what} shows {found:?}: {text}");
    }

    /// Every log line and panic so far is clean, but for the known leaks of
    /// ureq's `Trace` logging (see `trace_logs_never_contain_rest_secrets`):
    /// the token request's URI, with the client secret, and the wire dump,
    /// with client secrets and access tokens. The SOAP key never leaks.
    pub fn assert_logs_and_panics_clean(&self) {
        let logs = LOGS.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert!(!logs.is_empty(), "the logger captured nothing");
        let keys = [self.0[0].as_str(), self.0[2].as_str()];
        let client_secrets = [self.0[1].as_str(), self.0[3].as_str()];
        for (target, level, message) in &logs {
            let found = self.found_in(message);
            if is_wire_dump(target) {
                // Checked below, rebuilt.
                continue;
            }
            if is_known_token_url_leak(target, message) {
                assert!(
                    found.iter().all(|s| client_secrets.contains(s)),
                    "{target} {level}: {found:?}: {message}"
                );
                continue;
            }
            assert!(
                found.is_empty(),
                "{target} {level} shows {found:?}: {message}"
            );
        }
        let wire = wire_dump(&logs);
        let found = self.found_in(&wire);
        assert!(
            found.iter().all(|s| !keys.contains(s)),
            "ureq's wire dump shows an encryption key: {found:?}"
        );
        let panics = PANICS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for panic in &panics {
            self.assert_absent("a panic", panic);
            assert!(
                !panic.starts_with("sandbox-"),
                "the sandbox panicked: {panic}"
            );
        }
    }
}

/// ureq-proto dumps the bytes on the wire as hex rows at `Trace`.
fn is_wire_dump(target: &str) -> bool {
    target == "ureq_proto::util"
}

/// The bytes of every wire-dump row, in order (rows of concurrent
/// exchanges may interleave, which can only hide a secret, not invent one).
fn wire_dump(logs: &[(String, log::Level, String)]) -> String {
    let bytes: Vec<u8> = logs
        .iter()
        .filter(|(target, ..)| is_wire_dump(target))
        .flat_map(|(_, _, message)| hex_row(message))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// ureq logs the request URI with its query when `Trace` is enabled; the
/// token request carries the client secret in its query.
fn is_known_token_url_leak(target: &str, message: &str) -> bool {
    target == "ureq::run" && message.contains("/oauth/token?")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The bytes of one ureq-proto hex row (`4745 5420 ... ascii`), if it is one.
fn hex_row(message: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for group in message.split(' ').take(8) {
        for pair in [group.get(..2), group.get(2..4)].into_iter().flatten() {
            match u8::from_str_radix(pair, 16) {
                Ok(b) => bytes.push(b),
                Err(_) => return bytes,
            }
        }
    }
    bytes
}

/// The sandbox's current token, asked for on a raw socket (so nothing is
/// logged): while one is valid the identity service hands out the same.
fn current_token(addr: SocketAddr, client_id: &str, client_secret: &str) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        percent_encode(client_id),
        percent_encode(client_secret)
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /identity/oauth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let json = response.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    json["access_token"].as_str().unwrap().to_owned()
}
