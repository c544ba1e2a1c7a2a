//! Secrets (the SOAP encryption key, the REST client secret, the access
//! tokens) never appear in `Debug`, `Display`, error messages, logs, dry-run
//! output, CLI output or panics.
//!
//! A capturing logger at `Trace` records every log line of this test binary
//! (the crate's, the sandbox's, ureq's); a panic hook records every panic.
//! The tokens are read from the sandbox's identity service with a raw
//! socket, so that fetching them logs nothing.
#![cfg(feature = "sandbox")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::sync::{Mutex, Once, PoisonError};
use std::time::Duration;

use marketo_campaign::sandbox::{Sandbox, SandboxConfig};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Delivery, Error, Fallback, LeadKey,
    Outcome, ProgramToken, RestClient, RetryPolicy, Secret, SoapClient,
};

/// A key and a secret no sandbox accepts; they must not leak either.
const WRONG_KEY: &str = "WrongEncryptionKey0123456789ABCDEFfedcba";
const WRONG_SECRET: &str = "wrongClientSecretQ7x9Zk2Lm4Np";

// --- Capture --------------------------------------------------------------

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

fn init() {
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
struct Secrets(Vec<String>);

impl Secrets {
    fn new(sandbox: &Sandbox) -> Self {
        Secrets(vec![
            sandbox.soap_encryption_key().to_owned(),
            sandbox.client_secret().to_owned(),
            WRONG_KEY.to_owned(),
            WRONG_SECRET.to_owned(),
        ])
    }

    /// Adds the sandbox's current access token (the one clients hold).
    fn add_token(&mut self, sandbox: &Sandbox) {
        let token = current_token(sandbox);
        assert!(token.len() > 16, "{token}");
        if !self.0.contains(&token) {
            self.0.push(token);
        }
    }

    /// The secrets `text` shows, in clear or percent-encoded.
    fn found_in(&self, text: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|s| text.contains(s.as_str()) || text.contains(&percent_encode(s)))
            .map(String::as_str)
            .collect()
    }

    fn assert_absent(&self, what: &str, text: &str) {
        let found = self.found_in(text);
        assert!(found.is_empty(), "{what} shows {found:?}: {text}");
    }

    /// Every log line and panic so far is clean, but for the known leaks of
    /// ureq's `Trace` logging (see `trace_logs_never_contain_rest_secrets`):
    /// the token request's URI, with the client secret, and the wire dump,
    /// with client secrets and access tokens. The SOAP key never leaks.
    fn assert_logs_and_panics_clean(&self) {
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
fn current_token(sandbox: &Sandbox) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        percent_encode(sandbox.client_id()),
        percent_encode(sandbox.client_secret())
    );
    let mut stream = TcpStream::connect(sandbox.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /identity/oauth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sandbox.addr(),
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let json = response.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    json["access_token"].as_str().unwrap().to_owned()
}

/// Everything a value shows.
fn shown(value: &(impl std::fmt::Debug + ?Sized)) -> String {
    format!("{value:?} {value:#?}")
}

fn shown_result(result: &Result<Outcome, Error>) -> String {
    match result {
        Ok(outcome) => shown(outcome),
        Err(err) => format!("{} {}", shown(err), err),
    }
}

/// Calls `f`, which must not panic.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => panic!("{what} panicked"),
    }
}

fn request(lead: &str) -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), [lead.parse::<LeadKey>().unwrap()]).unwrap()
}

fn named_request() -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [ProgramToken::new("{{my.WebinarTitle}}", "Rust").unwrap()],
        ),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap()
}

fn quiet_soap(builder: marketo_campaign::SoapClientBuilder) -> SoapClient {
    builder
        .rate_limit(None)
        .retry(RetryPolicy::never())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn quiet_rest(builder: marketo_campaign::RestClientBuilder) -> RestClient {
    builder
        .rate_limit(None)
        .retry(RetryPolicy::never())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

// --- Library --------------------------------------------------------------

#[test]
fn clients_errors_outcomes_logs_and_plans_show_no_secret() {
    init();
    let sandbox = Sandbox::start_with(SandboxConfig::new()).unwrap();
    let mut secrets = Secrets::new(&sandbox);
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut see = |what: &str, text: String| seen.push((what.to_owned(), text));

    // Builders and clients, before and after use.
    let soap_builder = sandbox.soap_client_builder();
    see("soap builder", shown(&soap_builder));
    let soap = quiet_soap(soap_builder);
    let rest_builder = sandbox.rest_client_builder();
    see("rest builder", shown(&rest_builder));
    let rest = quiet_rest(rest_builder);
    see(
        "secret",
        shown(&Secret::new(sandbox.client_secret().to_owned())),
    );

    // SOAP: success, several chunks, a fault.
    let result = no_panic("soap", || soap.request_campaign(&named_request()));
    assert!(result.as_ref().unwrap().is_complete());
    see("soap outcome", shown_result(&result));
    let many = CampaignRequest::new(
        CampaignTarget::id(4496),
        (1..=150).map(|i| LeadKey::id(i).unwrap()),
    )
    .unwrap();
    let result = no_panic("soap incomplete", || soap.request_campaign(&many));
    assert!(matches!(result, Err(Error::Incomplete(_))), "{result:?}");
    see("soap incomplete", shown_result(&result));
    let wrong_key = quiet_soap(SoapClient::builder(
        sandbox.soap_endpoint(),
        sandbox.soap_user_id(),
        WRONG_KEY,
    ));
    let result = no_panic("wrong key", || {
        wrong_key.request_campaign(&request("EMAIL:lead@company.com"))
    });
    let err = result.as_ref().unwrap_err();
    assert_eq!(err.soap_code().map(|c| c.code()), Some(20014), "{err:?}");
    see("wrong key error", shown_result(&result));
    see(
        "wrong key client",
        format!("{} {}", shown(&wrong_key), wrong_key),
    );

    // REST: success (look-ups), a token renewal after 602, a wrong secret.
    let result = no_panic("rest", || rest.request_campaign(&named_request()));
    assert!(result.as_ref().unwrap().is_complete(), "{result:?}");
    see("rest outcome", shown_result(&result));
    secrets.add_token(&sandbox);
    see(
        "rest client with a token",
        format!("{} {}", shown(&rest), rest),
    );
    sandbox.expire_tokens();
    let result = no_panic("rest renewal", || {
        rest.request_campaign(&request("EMAIL:anotherlead@company.com"))
    });
    assert!(result.as_ref().unwrap().is_complete(), "{result:?}");
    see("rest renewed outcome", shown_result(&result));
    secrets.add_token(&sandbox);
    see("rest client renewed", format!("{} {}", shown(&rest), rest));
    assert_eq!(secrets.0.len(), 6, "two distinct tokens");
    let logs = LOGS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert!(
        logs.iter()
            .any(|(_, _, m)| m.contains("602") && m.contains("renewing")),
        "no renewal after 602"
    );
    // 601: tokens of one sandbox shown to another.
    let other = Sandbox::start().unwrap();
    let stranger = quiet_rest(
        RestClient::builder(
            other.rest_endpoint(),
            other.client_id(),
            other.client_secret(),
        )
        .identity(sandbox.identity_endpoint()),
    );
    let result = no_panic("601", || {
        stranger.request_campaign(&request("IDNUM:1002200"))
    });
    // The first call, the lead look-up, is refused: a failed read.
    let code = match result.as_ref().unwrap_err() {
        Error::ReadFailed { source, .. } => source.rest_code(),
        other => other.rest_code(),
    };
    assert_eq!(code.map(|c| c.code()), Some(601), "{result:?}");
    see("601 error", shown_result(&result));
    see("601 client", format!("{} {}", shown(&stranger), stranger));
    let wrong_secret = quiet_rest(
        marketo_campaign::RestClient::builder(
            sandbox.rest_endpoint(),
            sandbox.client_id(),
            WRONG_SECRET,
        )
        .identity(sandbox.identity_endpoint()),
    );
    let result = no_panic("wrong secret", || {
        wrong_secret.request_campaign(&request("IDNUM:1002200"))
    });
    assert!(matches!(result, Err(Error::Auth(_))), "{result:?}");
    see("wrong secret error", shown_result(&result));
    see(
        "wrong secret client",
        format!("{} {}", shown(&wrong_secret), wrong_secret),
    );

    // Fallback: SOAP retired (410), then falls back to REST.
    let fallback = Fallback::new(soap.clone(), rest.clone());
    sandbox.retire_soap(Some(410));
    let result = no_panic("fallback", || {
        fallback.request_campaign(&request("IDNUM:1002201"))
    });
    assert_eq!(result.as_ref().unwrap().chunks()[0].backend(), "rest");
    see("fallback outcome", shown_result(&result));
    see("fallback", format!("{} {}", shown(&fallback), fallback));
    sandbox.retire_soap(None);
    let fallback = Fallback::new(wrong_key.clone(), wrong_secret.clone());
    let result = no_panic("fallback wrong", || {
        fallback.request_campaign(&request("IDNUM:1002201"))
    });
    assert!(result.is_err());
    see("fallback wrong", shown_result(&result));

    // Nothing listening.
    let port = closed_port();
    let soap_closed = quiet_soap(SoapClient::builder(
        format!("http://127.0.0.1:{port}/soap/mktows/2_9"),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    ));
    let rest_closed = quiet_rest(RestClient::builder(
        format!("http://127.0.0.1:{port}"),
        sandbox.client_id(),
        sandbox.client_secret(),
    ));
    for client in [&soap_closed as &dyn CampaignRequester, &rest_closed] {
        let result = no_panic("closed port", || {
            client.request_campaign(&request("IDNUM:1002200"))
        });
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.delivery(), Delivery::NotSent, "{err:?}");
        see(
            "closed port",
            format!("{} {}", shown_result(&result), client),
        );
    }
    let fallback = Fallback::new(soap_closed, rest_closed);
    let result = no_panic("fallback closed", || {
        fallback.request_campaign(&request("IDNUM:1002200"))
    });
    see("fallback closed", shown_result(&result));

    // Dry runs: the plans, as the CLI prints them.
    for req in [named_request(), request("IDNUM:1002200"), many.clone()] {
        for plans in [soap.plan(&req).unwrap(), rest.plan(&req).unwrap()] {
            assert!(!plans.is_empty());
            for plan in &plans {
                see("plan", shown(plan));
                see("plan json", serde_json::to_string(plan).unwrap());
            }
        }
        let envelope = soap.envelope(&req, &req.leads()[..1]).unwrap();
        see("envelope", String::from_utf8_lossy(&envelope).into_owned());
    }

    for (what, text) in &seen {
        secrets.assert_absent(what, text);
    }
    secrets.assert_logs_and_panics_clean();
}

// With `log` at `Trace`, ureq writes the raw wire by design: target
// `ureq_proto::util` dumps every request and answer (so `Authorization:
// Bearer` headers and the identity answer), and `ureq::run` shows the token
// request's query (Marketo's identity call takes the credentials as query
// parameters). At `Debug` and above ureq redacts both. The README says never
// to keep `Trace` logs of the `ureq*` targets; the tests above check that
// this crate's own records, at every level, and ureq's below `Trace` carry no
// secret.

// --- Command line -------------------------------------------------------------

/// A CLI run: name, arguments, environment, expected exit code (`None`:
/// any failure).
type CliCase<'a> = (&'a str, Vec<&'a str>, Vec<(String, String)>, Option<i32>);

/// Runs the CLI with a clean environment plus `env`: exit code, stdout,
/// stderr.
fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marketo-campaign"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("MARKETO_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_shows_no_secret() {
    init();
    let sandbox = Sandbox::start().unwrap();
    let mut secrets = Secrets::new(&sandbox);
    let target = ["--campaign-id", "4496", "--lead", "EMAIL:lead@company.com"];
    let named = [
        "--campaign-name",
        "Send Webinar Reminder",
        "--program-name",
        "Webinars",
        "--token",
        "{{my.WebinarTitle}}=Rust",
        "--lead",
        "IDNUM:1002200",
    ];
    let mut runs: Vec<(String, (i32, String, String))> = Vec::new();
    let soap_env = [
        ("MARKETO_SOAP_ENDPOINT", sandbox.soap_endpoint()),
        ("MARKETO_SOAP_USER_ID", sandbox.soap_user_id().to_owned()),
        (
            "MARKETO_SOAP_ENCRYPTION_KEY",
            sandbox.soap_encryption_key().to_owned(),
        ),
    ];
    let rest_env = [
        ("MARKETO_REST_ENDPOINT", sandbox.rest_endpoint()),
        ("MARKETO_REST_IDENTITY", sandbox.identity_endpoint()),
        ("MARKETO_CLIENT_ID", sandbox.client_id().to_owned()),
        ("MARKETO_CLIENT_SECRET", sandbox.client_secret().to_owned()),
    ];
    let env = |soap: bool, rest: bool, key: &str, secret: &str| -> Vec<(String, String)> {
        let mut env = Vec::new();
        if soap {
            env.extend(soap_env.iter().map(|(n, v)| (n.to_string(), v.clone())));
            env[2].1 = key.to_owned();
        }
        if rest {
            let at = env.len();
            env.extend(rest_env.iter().map(|(n, v)| (n.to_string(), v.clone())));
            env[at + 3].1 = secret.to_owned();
        }
        env
    };
    let key = sandbox.soap_encryption_key().to_owned();
    let secret = sandbox.client_secret().to_owned();
    let cases: Vec<CliCase<'_>> = vec![
        // Dry runs, embedded sandbox and environment.
        (
            "dry soap",
            [
                &[
                    "request",
                    "--sandbox",
                    "--backend",
                    "soap",
                    "--dry-run",
                    "--json",
                ][..],
                &target,
            ]
            .concat(),
            vec![],
            Some(0),
        ),
        (
            "dry rest",
            [
                &[
                    "request",
                    "--sandbox",
                    "--backend",
                    "rest",
                    "--dry-run",
                    "--json",
                ][..],
                &named,
            ]
            .concat(),
            vec![],
            Some(0),
        ),
        (
            "dry auto",
            [&["request", "--sandbox", "--dry-run"][..], &named].concat(),
            vec![],
            Some(0),
        ),
        (
            "dry env",
            [
                &["request", "--backend", "auto", "--dry-run", "--json"][..],
                &target,
            ]
            .concat(),
            env(true, true, &key, &secret),
            Some(0),
        ),
        // Real runs.
        (
            "soap",
            [&["request", "--backend", "soap", "--json"][..], &target].concat(),
            env(true, false, &key, &secret),
            Some(0),
        ),
        (
            "rest",
            [&["request", "--backend", "rest", "--json"][..], &named].concat(),
            env(false, true, &key, &secret),
            Some(0),
        ),
        (
            "rest human",
            [&["request", "--backend", "rest"][..], &target].concat(),
            env(false, true, &key, &secret),
            Some(0),
        ),
        // Wrong credentials.
        (
            "wrong key",
            [&["request", "--backend", "soap", "--json"][..], &target].concat(),
            env(true, false, WRONG_KEY, &secret),
            Some(3),
        ),
        (
            "wrong key human",
            [&["request", "--backend", "soap"][..], &target].concat(),
            env(true, false, WRONG_KEY, &secret),
            Some(3),
        ),
        (
            "wrong secret",
            [&["request", "--backend", "rest", "--json"][..], &target].concat(),
            env(false, true, &key, WRONG_SECRET),
            None,
        ),
        (
            "wrong both",
            [&["request", "--backend", "auto"][..], &target].concat(),
            env(true, true, WRONG_KEY, WRONG_SECRET),
            None,
        ),
        // Missing configuration.
        (
            "unconfigured",
            [&["request", "--backend", "rest"][..], &target].concat(),
            vec![],
            Some(2),
        ),
    ];
    for (what, args, env, expected) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let run = no_panic(what, || cli(&args, &env));
        if let Some(code) = expected {
            assert_eq!(run.0, code, "{what}: {run:?}");
        } else {
            assert_ne!(run.0, 0, "{what}: {run:?}");
        }
        assert!(!run.2.contains("panicked"), "{what}: {}", run.2);
        runs.push((what.to_owned(), run));
    }
    // The CLI used the sandbox's token (still valid): it must not show it.
    secrets.add_token(&sandbox);
    for (what, (_, stdout, stderr)) in &runs {
        secrets.assert_absent(&format!("{what} stdout"), stdout);
        secrets.assert_absent(&format!("{what} stderr"), stderr);
    }
    // The dry runs printed their plans.
    assert!(runs[0].1 .1.contains("\"SOAPAction\""), "{:?}", runs[0]);
    assert!(
        runs[1].1 .1.contains("client_secret=%5Bredacted%5D"),
        "{:?}",
        runs[1]
    );
    secrets.assert_logs_and_panics_clean();
}
