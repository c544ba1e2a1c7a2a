//! `request --leads-file`: streaming, validation, CSV, resume.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use std::io::Write;

const BIN: &str = env!("CARGO_BIN_EXE_marketo-campaign");

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mc-bulk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
            input.write_all(text.as_bytes()).unwrap();
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

fn chunk_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("chunk").is_some())
        .collect()
}

#[test]
fn a_bad_line_anywhere_in_a_file_sends_nothing() {
    let dir = Dir::new("bad");
    let run = Run::sandbox(&config(&dir, 300));
    let mut text: String = (1..=300).map(|i| format!("IDNUM:{i}\n")).collect();
    text.push_str("EMAIL:\n");
    let file = dir.file("leads.txt", &text);
    let (code, _, stderr) = run.request(
        "soap",
        &["--campaign-id", "42", "--leads-file", &file],
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("leads.txt:301"), "{stderr}");
    assert!(run.served().is_empty());
}

#[test]
fn stdin_streams_and_stops_at_a_bad_line() {
    let dir = Dir::new("stdin");
    let run = Run::sandbox(&config(&dir, 300));
    let mut text: String = (1..=250).map(|i| format!("IDNUM:{i}\n")).collect();
    text.push_str("NOPE:1\n");
    let (code, stdout, stderr) = run.request(
        "soap",
        &["--campaign-id", "42", "--leads-file", "-", "--json"],
        Some(&text),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("stdin:251"), "{stderr}");
    // The two full chunks before the bad line were sent and reported.
    assert_eq!(chunk_lines(&stdout).len(), 2);
    assert_eq!(run.served(), (1..=200).collect::<Vec<_>>());
}

#[test]
fn csv_with_an_email_column_over_rest() {
    let dir = Dir::new("csv");
    let run = Run::sandbox(&config(&dir, 500));
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

#[test]
fn resume_skips_served_chunks_and_refuses_a_changed_file() {
    let dir = Dir::new("resume");
    let run = Run::sandbox(&config(&dir, 1000));
    // Leads 501..=600 do not exist yet: SOAP refuses that chunk (20103),
    // the run goes on, and the output records it.
    let text: String = (1..=1000)
        .map(|i| {
            format!(
                "IDNUM:{}\n",
                if (501..=600).contains(&i) {
                    i + 5000
                } else {
                    i
                }
            )
        })
        .collect();
    let file = dir.file("leads.txt", &text);
    let (code, stdout, stderr) = run.request(
        "soap",
        &[
            "--campaign-id",
            "42",
            "--leads-file",
            &file,
            "--json",
            "--workers",
            "3",
        ],
        None,
    );
    assert_eq!(code, 3, "{stderr}");
    let record = dir.file("run1.jsonl", &stdout);
    let failed: Vec<u64> = chunk_lines(&stdout)
        .iter()
        .filter(|l| l["status"] != "accepted")
        .map(|l| l["chunk"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [5]);
    let first_run = run.served();
    assert_eq!(first_run.len(), 900);

    // Fix the file and resume: only chunk 5 is sent again.
    let fixed: String = (1..=1000)
        .map(|i| {
            if (501..=600).contains(&i) {
                format!("EMAIL:l{i}@x.example\n")
            } else {
                format!("IDNUM:{i}\n")
            }
        })
        .collect();
    // The first lead of chunk 5 changed (IDNUM:5501 -> EMAIL:l501@...): refused.
    let fixed_file = dir.file("leads.txt", &fixed);
    let (code, _, stderr) = run.request(
        "soap",
        &[
            "--campaign-id",
            "42",
            "--leads-file",
            &fixed_file,
            "--resume",
            &record,
        ],
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("changed"), "{stderr}");
    assert_eq!(run.served().len(), 900, "nothing sent");

    // Same first leads, fixed values after them: resume sends chunk 5 only.
    let same_start: String = (1..=1000)
        .map(|i| match i {
            501 => "IDNUM:5501\n".to_owned(),
            502..=600 => format!("IDNUM:{i}\n"),
            _ => format!("IDNUM:{i}\n"),
        })
        .collect();
    let file = dir.file("leads.txt", &same_start);
    let (code, stdout, stderr) = run.request(
        "soap",
        &[
            "--campaign-id",
            "42",
            "--leads-file",
            &file,
            "--resume",
            &record,
            "--json",
        ],
        None,
    );
    // 5501 still does not exist: chunk 5 is refused again, nothing else sent.
    assert_eq!(code, 3, "{stderr}");
    let lines = chunk_lines(&stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["chunk"], 5);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["skipped"], 9);
    assert_eq!(run.served(), first_run, "no lead served twice");
}

#[test]
fn dry_run_streams_plans_per_chunk() {
    let dir = Dir::new("dry");
    let run = Run::sandbox(&config(&dir, 10));
    let text: String = (1..=250).map(|i| format!("IDNUM:{i}\n")).collect();
    let file = dir.file("leads.txt", &text);
    let (code, stdout, stderr) = run.request(
        "rest",
        &[
            "--campaign-id",
            "42",
            "--leads-file",
            &file,
            "--dry-run",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let plans: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let methods: Vec<&str> = plans
        .iter()
        .map(|p| p["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["GET", "POST", "POST", "POST"],
        "one token request, then a trigger per chunk"
    );
    assert!(run.served().is_empty());
}
