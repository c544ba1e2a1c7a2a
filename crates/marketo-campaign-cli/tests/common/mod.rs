//! What the command line's tests share.
#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `marketo-campaign` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_marketo-campaign");

/// The workspace's root: README.md, examples/ and tests/fixtures/ are
/// there, and the README's commands run from there.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// `marketo-campaign ARGS...` with stdout piped, and its first line of
/// stdout parsed as JSON (the start-up line of `sandbox` and `bridge`).
pub fn spawn_with_start_line(args: &[&str]) -> (Child, serde_json::Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("a start-up line");
    let start = serde_json::from_str(&line).expect("the start-up line is JSON");
    (child, start)
}
