//! `request --leads-file`: streaming, validation, CSV, resume.

use crate::common;

use std::process::{Command, Output, Stdio};

use std::io::Write;

use common::{Dir, BIN};

/// Runs `request` against a sandbox process started with `config`.
struct Run {
    child: std::process::Child,
    line: serde_json::Value,
}

impl Run {
    fn sandbox(config: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["sandbox", "--config", config])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        Run {
            child,
            line: serde_json::from_str(&line).unwrap(),
        }
    }

    fn request(&self, backend: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let get = |k: &str| self.line[k].as_str().unwrap().to_owned();
        let mut command = Command::new(BIN);
        command
            .args(["request", "--backend", backend])
            .args(args)
            .env("MARKETO_SOAP_ENDPOINT", get("soap_endpoint"))
            .env("MARKETO_SOAP_USER_ID", get("soap_user_id"))
            .env("MARKETO_SOAP_ENCRYPTION_KEY", get("soap_encryption_key"))
            .env("MARKETO_REST_ENDPOINT", get("rest_endpoint"))
            .env("MARKETO_CLIENT_ID", get("client_id"))
            .env("MARKETO_CLIENT_SECRET", get("client_secret"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            // The CLI may exit before it reads its input (it refused the
            // arguments): its pipe is then closed.
            if let Err(e) = input.write_all(text.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            }
        }
        drop(input);
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        (
            status.code().unwrap(),
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    }

    /// `request --backend BACKEND --campaign-id 42 --leads-file FILE
    /// EXTRA...`.
    fn campaign_42(&self, backend: &str, file: &str, extra: &[&str]) -> (i32, String, String) {
        let args = [&["--campaign-id", "42", "--leads-file", file][..], extra].concat();
        self.request(backend, &args, None)
    }

    fn served(&self) -> Vec<u64> {
        let url = self.line["journal"].as_str().unwrap();
        let mut response = ureq::get(url).call().unwrap();
        let journal: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        let mut ids: Vec<u64> = journal
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| {
                e["lead_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap())
            })
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Dir, leads: u32) -> String {
    let leads: Vec<serde_json::Value> = (1..=leads)
        .map(|id| serde_json::json!({"id": id, "email": format!("l{id}@x.example")}))
        .collect();
    dir.file(
        "sandbox.json",
        &serde_json::json!({"campaigns": [{"id": 42, "name": "C", "program": "P"}], "leads": leads})
            .to_string(),
    )
}

/// A scratch directory `mc-bulk-<name>-<pid>`, and a sandbox process of
/// campaign 42 and `leads` leads.
fn started(name: &str, leads: u32) -> (Dir, Run) {
    let dir = Dir::new(&format!("bulk-{name}"));
    let run = Run::sandbox(&config(&dir, leads));
    (dir, run)
}

/// Each chunk's outcome line (not its write-ahead "sending" line).
fn chunk_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("chunk").is_some() && l["status"] != "sending")
        .collect()
}

#[test]
fn a_bad_line_anywhere_in_a_file_sends_nothing() {
    let (dir, run) = started("bad", 300);
    let mut text: String = (1..=300).map(|i| format!("IDNUM:{i}\n")).collect();
    text.push_str("EMAIL:\n");
    let file = dir.file("leads.txt", &text);
    let (code, _, stderr) = run.campaign_42("soap", &file, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("leads.txt:301"), "{stderr}");
    assert!(run.served().is_empty());
}

#[test]
fn stdin_stopped_at_a_bad_line_says_what_was_sent() {
    let (_dir, run) = started("stdin", 300);
    let args = ["--campaign-id", "42", "--leads-file", "-", "--json"];
    // A bad line before any chunk is full: nothing was sent, exit 2.
    let mut text: String = (1..=50).map(|i| format!("IDNUM:{i}\n")).collect();
    text.push_str("NOPE:1\n");
    let (code, stdout, stderr) = run.request("soap", &args, Some(&text));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("stdin:51") && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    assert!(chunk_lines(&stdout).is_empty(), "{stdout}");
    assert!(run.served().is_empty());

    // After two full chunks: they were sent and accepted; the rest did not
    // run. Not exit 2 ("nothing was sent") but 3, and said so.
    let mut text: String = (1..=250).map(|i| format!("IDNUM:{i}\n")).collect();
    text.push_str("NOPE:1\n");
    let (code, stdout, stderr) = run.request("soap", &args, Some(&text));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("stdin:251"), "{stderr}");
    assert!(
        stderr.contains("2 chunks (200 leads) had been sent (2 accepted, 0 failed)"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(chunk_lines(&stdout).len(), 2);
    let summary = summary_of(&stdout);
    assert_eq!(summary["complete"], false, "{stdout}");
    assert_eq!(summary["accepted"], 2, "{stdout}");
    assert!(
        summary["error"].as_str().unwrap().contains("stdin:251"),
        "{stdout}"
    );
    assert_eq!(run.served(), (1..=200).collect::<Vec<_>>());

    // Without --json too.
    let (code, stdout, stderr) = run.request(
        "soap",
        &["--campaign-id", "42", "--leads-file", "-"],
        Some(&text),
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("2 chunks (200 leads) had been sent"),
        "{stderr}"
    );

    // A chunk that may have run before the bad line: exit 4.
    add_fault(
        &run,
        r#"{"fault":{"kind":"http_status","status":502,"body":false,"runs":true},"api":"soap","times":1}"#,
    );
    let (code, _, stderr) = run.request("soap", &args, Some(&text));
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("unknown"), "{stderr}");
}

/// The `--help` paragraph of `flag`: from its line to the next flag's.
fn help_of(help: &str, flag: &str) -> String {
    let start = help
        .find(&format!("      {flag} "))
        .unwrap_or_else(|| panic!("{flag} missing from --help"));
    let rest = &help[start + flag.len() + 6..];
    let end = rest.find("\n  -").unwrap_or(rest.len());
    rest[..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[test]
fn help_explains_the_record_and_resume() {
    let output = Command::new(BIN)
        .args(["request", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let leads_file = help_of(&help, "--leads-file");
    for needle in [
        "write-ahead record",
        "\"sending\" line",
        "flushed before",
        "stdin",
        "exit 2 only if nothing was sent",
    ] {
        assert!(leads_file.contains(needle), "{needle}: {leads_file}");
    }
    let resume = help_of(&help, "--resume");
    for needle in [
        "refused, not sent or not attempted",
        "never resent",
        "accepted",
        "outcome is unknown",
        "\"sending\" line and no outcome",
        "exits 4",
        "another request",
        "changed",
    ] {
        assert!(resume.contains(needle), "{needle}: {resume}");
    }
}

#[test]
fn csv_with_an_email_column_over_rest() {
    let (dir, run) = started("csv", 500);
    let mut text = String::from("first_name,Email,company\n");
    for i in 1..=450 {
        text.push_str(&format!("\"Lead, {i}\",l{i}@x.example,Acme\n"));
    }
    text.push_str("Nobody,nobody@x.example,Acme\n");
    let file = dir.file("leads.csv", &text);
    let (code, stdout, stderr) = run.request(
        "rest",
        &[
            "--campaign-name",
            "C",
            "--program-name",
            "P",
            "--leads-file",
            &file,
            "--json",
        ],
        None,
    );
    assert_eq!(code, 3, "one key matched no lead: {stderr}");
    let lines = chunk_lines(&stdout);
    assert_eq!(lines.len(), 5);
    let unmatched: Vec<&serde_json::Value> = lines
        .iter()
        .flat_map(|l| l["unmatched"].as_array().unwrap())
        .collect();
    assert_eq!(unmatched, [&serde_json::json!("EMAIL:nobody@x.example")]);
    assert_eq!(run.served(), (1..=450).collect::<Vec<_>>());
}

/// 1,000 IDNUM leads whose chunk 5 (leads 501-600) names leads that do not
/// exist: SOAP refuses that chunk (20103) and the run goes on.
fn with_bad_chunk_5() -> String {
    (1..=1000)
        .map(|i| {
            let id = if (501..=600).contains(&i) {
                i + 5000
            } else {
                i
            };
            format!("IDNUM:{id}\n")
        })
        .collect()
}

fn summary_of(stdout: &str) -> serde_json::Value {
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    last["summary"].clone()
}

#[test]
fn a_resume_of_a_resume_sends_nothing_the_first_run_accepted() {
    let (dir, run) = started("resume", 1000);
    let file = dir.file("leads.txt", &with_bad_chunk_5());
    let args = |record: Option<&str>| {
        let mut args = vec![
            "--campaign-id",
            "42",
            "--leads-file",
            &file,
            "--json",
            "--workers",
            "3",
        ];
        if let Some(record) = record {
            args.extend(["--resume", record]);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let request = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run.request("soap", &args, None)
    };
    let (code, stdout, stderr) = request(args(None));
    assert_eq!(code, 3, "{stderr}");
    let failed: Vec<u64> = chunk_lines(&stdout)
        .iter()
        .filter(|l| l["status"] != "accepted")
        .map(|l| l["chunk"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [5]);
    let first_run = run.served();
    assert_eq!(first_run.len(), 900);
    let run1 = dir.file("run1.jsonl", &stdout);

    // Resume with the file unchanged: only chunk 5 is sent (refused again),
    // and the output records all ten chunks.
    let (code, stdout, stderr) = request(args(Some(&run1)));
    assert_eq!(code, 3, "{stderr}");
    let lines = chunk_lines(&stdout);
    assert_eq!(lines.len(), 10, "{stdout}");
    let sent: Vec<u64> = lines
        .iter()
        .filter(|l| l["carried_over"] != true)
        .map(|l| l["chunk"].as_u64().unwrap())
        .collect();
    assert_eq!(sent, [5]);
    let summary = summary_of(&stdout);
    assert_eq!(summary["skipped"], 9);
    assert_eq!(summary["accepted"], 9);
    assert_eq!(summary["complete"], false);
    assert_eq!(
        run.served(),
        first_run,
        "nothing the first run accepted ran again"
    );
    let run2 = dir.file("run2.jsonl", &stdout);

    // Fix chunk 5 (a chunk that was refused may change) and resume from
    // the resume's output: chunk 5 alone is sent, and the run is complete.
    let fixed: String = (1..=1000)
        .map(|i| {
            if (501..=600).contains(&i) {
                format!("EMAIL:l{i}@x.example\n")
            } else {
                format!("IDNUM:{i}\n")
            }
        })
        .collect();
    dir.file("leads.txt", &fixed);
    let (code, stdout, stderr) = request(args(Some(&run2)));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(chunk_lines(&stdout).len(), 10);
    let summary = summary_of(&stdout);
    assert_eq!(
        (summary["accepted"].clone(), summary["complete"].clone()),
        (10.into(), true.into())
    );
    assert_eq!(
        run.served(),
        (1..=1000).collect::<Vec<_>>(),
        "every lead ran once"
    );

    // A resume of a complete run sends nothing.
    let run3 = dir.file("run3.jsonl", &stdout);
    let (code, _, stderr) = request(args(Some(&run3)));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(run.served(), (1..=1000).collect::<Vec<_>>());
}

#[test]
fn a_resume_refuses_a_leads_file_changed_in_a_chunk_that_was_sent() {
    let (dir, run) = started("changed", 1000);
    let file = dir.file("leads.txt", &with_bad_chunk_5());
    let (code, stdout, stderr) = run.campaign_42("soap", &file, &["--json"]);
    assert_eq!(code, 3, "{stderr}");
    let record = dir.file("run1.jsonl", &stdout);
    assert_eq!(run.served().len(), 900);
    let resume = |text: &str| {
        let file = dir.file("leads.txt", text);
        run.campaign_42("soap", &file, &["--resume", &record])
    };
    // The 50th lead of chunk 2 (accepted) names another key for the same lead.
    let edited = with_bad_chunk_5().replace("IDNUM:250\n", "EMAIL:l250@x.example\n");
    // Chunk 9 (accepted) lost its last lead.
    let shorter = with_bad_chunk_5().replace("IDNUM:1000\n", "");
    // Chunks 8 and 9 (accepted) are gone.
    let truncated: String = with_bad_chunk_5()
        .lines()
        .take(800)
        .map(|l| format!("{l}\n"))
        .collect();
    // Two leads swapped inside chunk 7.
    let swapped = with_bad_chunk_5()
        .replace("IDNUM:701\n", "IDNUM:x\n")
        .replace("IDNUM:702\n", "IDNUM:701\n")
        .replace("IDNUM:x\n", "IDNUM:702\n");
    for (name, text, chunk) in [
        ("edited", &edited, "chunk 2 (leads 201-300"),
        ("shorter", &shorter, "chunk 9 (leads 901-999"),
        ("truncated", &truncated, "chunk 8 (leads 801-900"),
        ("swapped", &swapped, "chunk 7 (leads 701-800"),
    ] {
        let (code, stdout, stderr) = resume(text);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(
            stderr.contains("changed") && stderr.contains(chunk),
            "{name}: {stderr}"
        );
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert_eq!(run.served().len(), 900, "{name}: nothing sent");
    }
    // --resume needs a file it can check whole.
    let (code, _, stderr) = run.request(
        "soap",
        &[
            "--campaign-id",
            "42",
            "--leads-file",
            "-",
            "--resume",
            &record,
        ],
        Some(&with_bad_chunk_5()),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("stdin"), "{stderr}");
    // A record without digests (or not a record) is refused.
    let old = dir.file(
        "old.jsonl",
        "{\"chunk\":0,\"first_lead\":\"IDNUM:1\",\"leads\":100,\"status\":\"accepted\"}\n",
    );
    let file = dir.file("leads.txt", &with_bad_chunk_5());
    let (code, _, stderr) = run.campaign_42("soap", &file, &["--resume", &old]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no digest"), "{stderr}");
    assert_eq!(run.served().len(), 900);
}

#[test]
fn text_output_names_failed_and_not_attempted_chunks_on_a_pipe() {
    let (dir, run) = started("text", 1000);
    // SOAP: chunk 5 is refused for its leads, the run goes on.
    let file = dir.file("leads.txt", &with_bad_chunk_5());
    let (code, stdout, stderr) = run.campaign_42("soap", &file, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let named: Vec<&str> = stderr.lines().filter(|l| l.starts_with("chunk ")).collect();
    assert_eq!(named.len(), 1, "{stderr}");
    assert!(
        named[0].starts_with("chunk 5 (leads 501-600, from IDNUM:5501): failed (refused"),
        "{stderr}"
    );
    // REST: the first call of a three-chunk request is refused (603), so
    // chunk 0 failed and chunks 1 and 2 were not attempted.
    add_fault(
        &run,
        r#"{"fault":{"kind":"rest_error","code":603},"api":"rest","times":1}"#,
    );
    let file = dir.file(
        "leads.txt",
        &(1..=300)
            .map(|i| format!("IDNUM:{i}\n"))
            .collect::<String>(),
    );
    let (code, _, stderr) = run.campaign_42("rest", &file, &[]);
    assert_ne!(code, 0, "{stderr}");
    let named: Vec<&str> = stderr.lines().filter(|l| l.starts_with("chunk ")).collect();
    assert_eq!(named.len(), 3, "{stderr}");
    assert!(
        named
            .iter()
            .any(|l| l.starts_with("chunk 0 (leads 1-100, from IDNUM:1): failed (")),
        "{stderr}"
    );
    for chunk in [
        "chunk 1 (leads 101-200, from IDNUM:101)",
        "chunk 2 (leads 201-300, from IDNUM:201)",
    ] {
        assert!(
            named
                .iter()
                .any(|l| l.starts_with(chunk) && l.contains("not attempted")),
            "{chunk}: {stderr}"
        );
    }
    assert_eq!(
        run.served().len(),
        900,
        "the REST run sent nothing that ran"
    );
}

/// Adds a fault rule to a sandbox process (`POST /sandbox/faults`).
fn add_fault(run: &Run, rule: &str) {
    let journal = run.line["journal"].as_str().unwrap();
    let url = journal.replace("/sandbox/journal", "/sandbox/faults");
    ureq::post(&url)
        .header("Content-Type", "application/json")
        .send(rule)
        .unwrap();
}

#[test]
fn empty_input_is_refused_and_sends_nothing() {
    let (dir, run) = started("empty", 10);
    for (name, text) in [
        ("empty", ""),
        (
            "blank and comments",
            "\n# leads to come\n   \n\t\n# none yet\n",
        ),
        ("a CSV header alone", "email,name\n"),
    ] {
        let file = dir.file("leads.txt", text);
        for backend in ["soap", "rest"] {
            let (code, stdout, stderr) = run.request(
                backend,
                &["--campaign-id", "42", "--leads-file", &file, "--json"],
                None,
            );
            assert_eq!(code, 2, "{name} over {backend}: {stderr}");
            assert!(stderr.contains("no leads"), "{name}: {stderr}");
            assert!(stdout.is_empty(), "{name}: {stdout}");
        }
        let (code, _, stderr) = run.request(
            "soap",
            &["--campaign-id", "42", "--leads-file", "-"],
            Some(text),
        );
        assert_eq!(code, 2, "{name} on stdin: {stderr}");
        assert!(stderr.contains("no leads"), "{name} on stdin: {stderr}");
    }
    // An empty file next to --lead is refused too.
    let file = dir.file("leads.txt", "");
    let (code, _, stderr) = run.request(
        "soap",
        &[
            "--campaign-id",
            "42",
            "--lead",
            "IDNUM:1",
            "--leads-file",
            &file,
        ],
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(run.served().is_empty());
}

#[test]
fn dry_run_streams_plans_per_chunk() {
    let (dir, run) = started("dry", 10);
    let text: String = (1..=250).map(|i| format!("IDNUM:{i}\n")).collect();
    let file = dir.file("leads.txt", &text);
    let (code, stdout, stderr) = run.campaign_42("rest", &file, &["--dry-run", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let plans: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let methods: Vec<&str> = plans
        .iter()
        .map(|p| p["method"].as_str().unwrap())
        .collect();
    // One token request, then the id look-up of each chunk; the trigger
    // bodies depend on the look-ups' answers, so they are not planned.
    assert_eq!(methods, ["GET", "GET", "GET", "GET"]);
    assert!(plans[0]["url"].as_str().unwrap().contains("/oauth/token"));
    for plan in &plans[1..] {
        let url = plan["url"].as_str().unwrap();
        assert!(url.contains("/rest/v1/leads.json?filterType=id&"), "{url}");
    }
    assert!(run.served().is_empty());
}
