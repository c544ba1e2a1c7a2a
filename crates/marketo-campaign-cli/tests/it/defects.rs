//! Issue 18's defects, seen by running the binary as a new user would.

use crate::common::BIN;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mc-defects-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("a temporary file");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// `--json > run.jsonl`: the record is a regular file, whose "sending"
/// lines are synced before their chunk is sent; the run goes as before.
#[test]
fn a_record_redirected_to_a_file_is_written_and_synced() {
    let dir = Dir::new("record-file");
    // The embedded sandbox's two leads, 150 keys: two chunks.
    let leads: String = (0..150)
        .map(|i| format!("IDNUM:{}\n", 1_002_200 + i % 2))
        .collect();
    let leads = dir.file("leads.txt", &leads);
    let record = dir.path("run.jsonl");
    let out = std::fs::File::create(&record).expect("the record file");
    let status = Command::new(BIN)
        .args([
            "request",
            "--sandbox",
            "--backend",
            "soap",
            "--campaign-id",
            "4496",
        ])
        .args(["--leads-file", text(&leads), "--json"])
        .stdout(out)
        .stderr(Stdio::null())
        .status()
        .expect("the binary runs");
    let lines = std::fs::read_to_string(&record).expect("the record");
    assert_eq!(status.code(), Some(0), "{lines}");
    let sending = lines
        .lines()
        .filter(|l| l.contains(r#""status":"sending""#));
    assert_eq!(sending.count(), 2, "{lines}");
    assert!(lines.contains(r#""complete":true"#), "{lines}");
}

/// A standalone sandbox process, killed when dropped (and its campaign
/// map file removed).
struct Sandbox {
    child: std::process::Child,
    line: serde_json::Value,
    map: PathBuf,
}

impl Sandbox {
    fn start() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let map = std::env::temp_dir().join(format!(
            "mc-defects-map-{}-{}.json",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let (child, line) =
            crate::common::spawn_with_start_line(&["sandbox", "--campaign-map-out", text(&map)]);
        Sandbox { child, line, map }
    }

    fn get(&self, key: &str) -> String {
        self.line[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.line))
            .to_owned()
    }

    /// `marketo-campaign ARGS` sent to this sandbox over SOAP and REST,
    /// with `stdin` as its input.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env("MARKETO_SOAP_ENDPOINT", self.get("soap_endpoint"))
            .env("MARKETO_SOAP_USER_ID", self.get("soap_user_id"))
            .env(
                "MARKETO_SOAP_ENCRYPTION_KEY",
                self.get("soap_encryption_key"),
            )
            .env("MARKETO_REST_ENDPOINT", self.get("rest_endpoint"))
            .env("MARKETO_CLIENT_ID", self.get("client_id"))
            .env("MARKETO_CLIENT_SECRET", self.get("client_secret"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut input = child.stdin.take().expect("stdin is piped");
        let writer = stdin.map(|bytes| {
            let bytes = bytes.to_vec();
            // The command may refuse its input before reading it all.
            std::thread::spawn(move || {
                let _ = std::io::Write::write_all(&mut input, &bytes);
            })
        });
        let output = child.wait_with_output().expect("the binary ends");
        if let Some(writer) = writer {
            writer.join().expect("the input is written");
        }
        output
    }

    /// The campaign runs the sandbox journaled.
    fn journal(&self) -> serde_json::Value {
        let (status, body) = test_support::http::get(&self.get("journal"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("the journal is JSON")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.map);
    }
}

/// Asserts that `output` is a brief refusal (exit 2) that says `needles`.
fn refused_briefly(what: &str, output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown: String = stderr.chars().take(600).collect();
    assert_eq!(output.status.code(), Some(2), "{what}: {shown}");
    assert!(
        stderr.len() < 600,
        "{what}: {} bytes of stderr, the input quoted whole? {shown}…",
        stderr.len()
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{what}: no {needle:?} in {stderr}");
    }
    assert!(
        output.stdout.is_empty(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn journal_is_empty(sandbox: &Sandbox) {
    let journal = sandbox.journal();
    let runs = journal
        .as_array()
        .map_or_else(|| journal["runs"].as_array().map_or(0, Vec::len), Vec::len);
    assert_eq!(runs, 0, "nothing may be sent: {journal}");
}

/// `EMAIL:` and a million characters on the first line of a leads file:
/// the error names the value's length against the key type's limit, quotes
/// a short prefix, and nothing is sent (exit 2): from a file, from stdin,
/// in a CSV, and as `--lead`.
#[test]
fn a_megabyte_lead_value_is_refused_briefly_with_the_limit() {
    let sandbox = Sandbox::start();
    let dir = Dir::new("megabyte");
    let big = "a".repeat(1_000_000);
    let pairs = dir.file(
        "pairs.txt",
        &format!("EMAIL:{big}\nEMAIL:lead@company.com\n"),
    );
    let csv = dir.file("leads.csv", &format!("type,value\nEMAIL,{big}\n"));
    let email_column = dir.file("emails.csv", &format!("email\n{big}\n"));
    let request = ["request", "--backend", "soap", "--campaign-id", "4496"];
    let limit = ["1000000 characters", "more than 255"];
    for (what, file) in [
        ("TYPE:VALUE file", &pairs),
        ("CSV type,value", &csv),
        ("CSV email column", &email_column),
    ] {
        let output = sandbox.run(
            &[&request[..], &["--leads-file", text(file)]].concat(),
            None,
        );
        refused_briefly(what, &output, &limit);
    }
    let output = sandbox.run(
        &[&request[..], &["--leads-file", "-"]].concat(),
        Some(format!("EMAIL:{big}\n").as_bytes()),
    );
    refused_briefly("stdin", &output, &limit);
    // The longest argument Linux takes is 128 KiB.
    let long = "b".repeat(100_000);
    let output = sandbox.run(
        &[&request[..], &["--lead", &format!("EMAIL:{long}")]].concat(),
        None,
    );
    refused_briefly("--lead", &output, &["100000 characters", "more than 255"]);
    journal_is_empty(&sandbox);
}

/// Whatever the input that is wrong, a megabyte of it is not printed back:
/// a first line that is neither TYPE:VALUE nor a CSV header, an unknown key
/// type, a CSV row without the value's column.
#[test]
fn no_error_quotes_a_long_input_whole() {
    let sandbox = Sandbox::start();
    let dir = Dir::new("long-inputs");
    let big = "c".repeat(1_000_000);
    let request = ["request", "--backend", "soap", "--campaign-id", "4496"];
    for (what, body, needle) in [
        (
            "neither pairs nor CSV",
            big.clone(),
            "neither TYPE:VALUE nor a CSV header",
        ),
        (
            "unknown key type",
            format!("EMAIL:lead@company.com\n{big}:x"),
            "is not one of",
        ),
        (
            "CSV row without its value column",
            format!("name,type,value\n{big},EMAIL\n"),
            "has no column 3",
        ),
        (
            "CSV row of an unknown type",
            format!("type,value\n{big},x\n"),
            "is not one of",
        ),
    ] {
        let file = dir.file("leads.txt", &format!("{body}\n"));
        let output = sandbox.run(
            &[&request[..], &["--leads-file", text(&file)]].concat(),
            None,
        );
        // The input's length is said, its first characters quoted.
        refused_briefly(what, &output, &[needle, " characters)", "\"ccccc"]);
    }
    let long = "9".repeat(100_000);
    let webhook = dir.file(
        "webhook.json",
        r#"{"url":"https://example.com/x","request_type":"GET"}"#,
    );
    for (what, args) in [
        (
            "--campaign-id",
            vec!["request", "--campaign-id", &long, "--lead", "IDNUM:1"],
        ),
        (
            "--rate-limit",
            vec![
                "request",
                "--campaign-id",
                "1",
                "--lead",
                "IDNUM:1",
                "--rate-limit",
                &long,
            ],
        ),
        (
            "--source",
            vec![
                "request",
                "--campaign-id",
                "1",
                "--lead",
                "IDNUM:1",
                "--source",
                &long,
            ],
        ),
        (
            "--timestamp",
            vec![
                "request",
                "--campaign-id",
                "1",
                "--lead",
                "IDNUM:1",
                "--timestamp",
                &long,
            ],
        ),
        (
            "--namespace",
            vec![
                "request",
                "--campaign-id",
                "1",
                "--lead",
                "IDNUM:1",
                "--namespace",
                &long,
            ],
        ),
        (
            "webhook --token",
            vec![
                "webhook",
                "render",
                "--webhook",
                text(&webhook),
                "--token",
                &long,
            ],
        ),
        (
            "--leads-file",
            vec!["request", "--campaign-id", "1", "--leads-file", &long],
        ),
        (
            "--campaign-map",
            vec![
                "request",
                "--backend",
                "ajo",
                "--campaign-id",
                "1",
                "--lead",
                "EMAIL:a@b.c",
                "--campaign-map",
                &long,
            ],
        ),
        ("sandbox --config", vec!["sandbox", "--config", &long]),
        ("bridge --users-file", vec!["bridge", "--users-file", &long]),
    ] {
        let output = sandbox.run(&args, None);
        refused_briefly(what, &output, &["100000 characters"]);
    }
    // A path the parser takes (under PATH_MAX) that names no file: cut in
    // the middle, its file name shown.
    let path = format!("/{}/leads.txt", "d".repeat(3000));
    let output = sandbox.run(
        &["request", "--campaign-id", "1", "--leads-file", &path],
        None,
    );
    refused_briefly(
        "a 3000-character path",
        &output,
        &["/leads.txt (3011 characters)"],
    );
    journal_is_empty(&sandbox);
}

/// `marketo-campaign sandbox` names its AJO campaigns and writes a campaign
/// map: with the AJO variables of its start-up line and
/// `AJO_CAMPAIGN_MAP` set to that map, the README's webinar request by name
/// runs over AJO against the standalone sandbox.
#[test]
fn a_standalone_sandbox_names_its_ajo_campaigns_and_writes_their_map() {
    let sandbox = Sandbox::start();
    let campaigns = sandbox.line["ajo_campaigns"]
        .as_array()
        .unwrap_or_else(|| panic!("no ajo_campaigns in {}", sandbox.line));
    let webinar = campaigns
        .iter()
        .find(|c| c["marketo_campaign_id"] == 1234)
        .unwrap_or_else(|| panic!("no AJO campaign for 1234 in {campaigns:?}"));
    assert_eq!(webinar["id"], "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234");
    assert_eq!(webinar["name"], "Webinar Reminder (API-triggered)");
    assert_eq!(webinar["marketo_campaign"], "Send Webinar Reminder");
    assert_eq!(webinar["marketo_program"], "Webinars");
    let map = sandbox.get("ajo_campaign_map");
    assert_eq!(Path::new(&map), sandbox.map, "--campaign-map-out");
    let text = std::fs::read_to_string(&map).expect("the map file exists");
    assert!(
        text.contains("7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234"),
        "{text}"
    );
    let output = Command::new(BIN)
        .args(["request", "--backend", "ajo", "--json"])
        .args([
            "--campaign-name",
            "Send Webinar Reminder",
            "--program-name",
            "Webinars",
        ])
        .args(["--token", "{{my.WebinarTitle}}=Migrating off SOAP"])
        .args(["--token", "{{my.JoinLink}}=https://example.com/join"])
        .args([
            "--token",
            "{{my.WebinarImage}}=https://example.com/webinar.png",
        ])
        .args(["--lead", "EMAIL:lead@company.com"])
        .env("AJO_ENDPOINT", sandbox.get("ajo_endpoint"))
        .env("AJO_IMS_TOKEN_URL", sandbox.get("ims_token_url"))
        .env("AJO_CLIENT_ID", sandbox.get("ajo_client_id"))
        .env("AJO_CLIENT_SECRET", sandbox.get("ajo_client_secret"))
        .env("AJO_ORG_ID", sandbox.get("ajo_org_id"))
        .env("AJO_SANDBOX_NAME", sandbox.get("ajo_sandbox_name"))
        .env("AJO_CAMPAIGN_MAP", &map)
        .output()
        .expect("the binary runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let journal = sandbox.journal();
    let runs = journal.as_array().expect("the journal is a list");
    assert_eq!(runs.len(), 1, "{journal}");
    assert_eq!(
        runs[0]["ajo"]["campaign_id"], "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234",
        "{journal}"
    );
}
