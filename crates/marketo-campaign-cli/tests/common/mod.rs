//! What the command line's tests share.
#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The `marketo-campaign` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_marketo-campaign");

/// The workspace's root: README.md, examples/ and tests/fixtures/ are
/// there, and the README's commands run from there.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// `marketo-campaign ARGS...` without the caller's configuration: every
/// `MARKETO_`, `AJO_` and `ADOBE_` variable is removed.
pub fn cli(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("AJO_") || name.starts_with("ADOBE_") || name.starts_with("MARKETO_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` to its end: exit code, stdout, stderr.
pub fn run(command: &mut Command) -> (i32, String, String) {
    outcome(command.output().expect("the binary runs"))
}

/// `request --help`: it exits 0; its stdout.
pub fn request_help() -> String {
    let (code, stdout, _) = run(&mut cli(&["request", "--help"]));
    assert_eq!(code, 0);
    stdout
}

/// Exit code, stdout and stderr of a finished process.
pub fn outcome(output: Output) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = output;
    (
        status.code().expect("the process exited"),
        String::from_utf8(stdout).expect("stdout is UTF-8"),
        String::from_utf8(stderr).expect("stderr is UTF-8"),
    )
}

/// The first line of a child's piped stdout, parsed as JSON (the start-up
/// line of `sandbox` and `bridge`).
pub fn start_line(child: &mut Child) -> Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("a start-up line");
    serde_json::from_str(&line).expect("the start-up line is JSON")
}

/// `marketo-campaign ARGS...` with stdout piped, and its first line of
/// stdout parsed as JSON (the start-up line of `sandbox` and `bridge`).
pub fn spawn_with_start_line(args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let start = start_line(&mut child);
    (child, start)
}

/// `marketo-campaign sandbox --listen 127.0.0.1:0 EXTRA...`, killed on
/// drop.
pub struct SandboxProcess {
    child: Child,
    line: Value,
}

impl SandboxProcess {
    pub fn start(extra: &[&str]) -> Self {
        let mut child = cli(&[&["sandbox", "--listen", "127.0.0.1:0"], extra].concat())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the sandbox starts");
        let line = start_line(&mut child);
        SandboxProcess { child, line }
    }

    /// A string of the start-up line.
    pub fn get(&self, key: &str) -> String {
        self.line[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.line))
            .to_owned()
    }

    /// `GET /sandbox/journal`.
    pub fn journal(&self) -> Value {
        let mut response = ureq::get(&self.get("journal"))
            .call()
            .expect("the journal is served");
        serde_json::from_str(&response.body_mut().read_to_string().expect("a body"))
            .expect("the journal is JSON")
    }

    /// Sets each variable of `vars` to the start-up line's value of its
    /// key: `(variable, key)` pairs.
    pub fn env_from<'c>(&self, command: &'c mut Command, vars: &[(&str, &str)]) -> &'c mut Command {
        for (variable, key) in vars {
            command.env(variable, self.get(key));
        }
        command
    }

    /// The SOAP configuration.
    pub fn soap_env<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        self.env_from(
            command,
            &[
                ("MARKETO_SOAP_ENDPOINT", "soap_endpoint"),
                ("MARKETO_SOAP_USER_ID", "soap_user_id"),
                ("MARKETO_SOAP_ENCRYPTION_KEY", "soap_encryption_key"),
            ],
        )
    }

    /// The REST configuration.
    pub fn rest_env<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        self.env_from(
            command,
            &[
                ("MARKETO_REST_ENDPOINT", "rest_endpoint"),
                ("MARKETO_REST_IDENTITY", "identity_endpoint"),
                ("MARKETO_CLIENT_ID", "client_id"),
                ("MARKETO_CLIENT_SECRET", "client_secret"),
            ],
        )
    }

    /// The AJO configuration, the `ADOBE_` names for some (the `AJO_`
    /// ones win when both are set).
    pub fn ajo_env<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        self.env_from(
            command,
            &[
                ("AJO_CLIENT_ID", "ajo_client_id"),
                ("ADOBE_CLIENT_SECRET", "ajo_client_secret"),
                ("ADOBE_ORG_ID", "ajo_org_id"),
                ("AJO_SANDBOX_NAME", "ajo_sandbox_name"),
                ("AJO_ENDPOINT", "ajo_endpoint"),
                ("AJO_IMS_TOKEN_URL", "ims_token_url"),
            ],
        )
        .env("ADOBE_SANDBOX_NAME", "not-this-one")
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory `mc-<name>-<pid>` under the system's temporary
/// directory, removed on drop.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mc-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Dir(dir)
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("a UTF-8 path").to_owned()
    }

    /// Writes `text` to `name` in the directory; its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).expect("the file is written");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
