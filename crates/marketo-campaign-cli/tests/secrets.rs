//! Secrets (the SOAP encryption key, the REST client secret, the access
//! tokens) never appear in the command line's output, its errors, its
//! dry-run plans, nor in the logs and panics of the sandbox it talks to.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;

use marketo_sandbox::Sandbox;
use test_support::secrets::{init, Secrets, WRONG_KEY, WRONG_SECRET};

/// Calls `f`, which must not panic.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => panic!("{what} panicked"),
    }
}

/// A CLI run: name, arguments, environment, expected exit code (`None`:
/// any failure).
type CliCase<'a> = (&'a str, Vec<&'a str>, Vec<(String, String)>, Option<i32>);

/// Runs the CLI with a clean environment plus `env`: exit code, stdout,
/// stderr.
fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(common::BIN);
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
    let mut secrets = Secrets::new(sandbox.soap_encryption_key(), sandbox.client_secret());
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
    secrets.add_token(sandbox.addr(), sandbox.client_id());
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
