//! Bulk runs' write-ahead record and `--resume`, against an in-process
//! sandbox with faults, the CLI run as a child process (and killed).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig, SandboxData};

use common::{Dir, BIN};

/// A scratch directory `mc-resume-<name>-<pid>`.
fn resume_dir(name: &str) -> Dir {
    Dir::new(&format!("resume-{name}"))
}

/// A scratch directory, a sandbox with leads 1..=`leads` whose SOAP call
/// `call` runs and then answers `delay` late, and the file of the leads'
/// ids.
fn delayed(name: &str, leads: u32, delay: Duration, call: u64) -> (Dir, Sandbox, String) {
    let dir = resume_dir(name);
    let sandbox = sandbox(
        leads,
        vec![FaultRule::on_call(Fault::Delay(delay), call).api(Api::Soap)],
    );
    let leads = ids_file(&dir, leads);
    (dir, sandbox, leads)
}

/// A sandbox with leads 1..=`leads` and campaign 4496, and `faults`.
fn sandbox(leads: u32, faults: Vec<FaultRule>) -> Sandbox {
    Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, leads))
            .faults(faults),
    )
    .unwrap()
}

/// `request --backend soap --campaign-id 4496 --workers 1 --json <args>`
/// against `sandbox`.
fn cli(sandbox: &Sandbox, args: &[&str]) -> Command {
    cli_for(sandbox, &["--campaign-id", "4496"], args)
}

/// `request --backend soap <target> --workers 1 --json <args>` against
/// `sandbox`.
fn cli_for(sandbox: &Sandbox, target: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["request", "--backend", "soap"])
        .args(target)
        .args(["--workers", "1", "--json"])
        .args(args)
        .env("MARKETO_SOAP_ENDPOINT", sandbox.soap_endpoint())
        .env("MARKETO_SOAP_USER_ID", sandbox.soap_user_id())
        .env("MARKETO_SOAP_ENCRYPTION_KEY", sandbox.soap_encryption_key())
        .env_remove("MARKETO_REST_ENDPOINT")
        .env_remove("MARKETO_CLIENT_ID")
        .env_remove("MARKETO_CLIENT_SECRET")
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn ids_file(dir: &Dir, n: u32) -> String {
    let text: String = (1..=n).map(|i| format!("IDNUM:{i}\n")).collect();
    dir.file("leads.txt", &text)
}

/// Lead ids run so far, sorted, duplicates kept.
fn served(sandbox: &Sandbox) -> Vec<u32> {
    let mut ids: Vec<u32> = sandbox
        .journal()
        .iter()
        .flat_map(|e| e.lead_ids.iter().copied())
        .collect();
    ids.sort_unstable();
    ids
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The outcome line of each chunk (not the "sending" lines), by index.
fn outcomes(stdout: &str) -> Vec<(u64, String, Option<String>, bool)> {
    let mut outcomes: Vec<(u64, String, Option<String>, bool)> = lines(stdout)
        .iter()
        .filter(|l| l.get("chunk").is_some() && l["status"] != "sending")
        .map(|l| {
            (
                l["chunk"].as_u64().unwrap(),
                l["status"].as_str().unwrap().to_owned(),
                l["delivery"].as_str().map(str::to_owned),
                l["carried_over"] == true,
            )
        })
        .collect();
    outcomes.sort();
    outcomes
}

fn summary(stdout: &str) -> serde_json::Value {
    let last = lines(stdout).pop().unwrap();
    last["summary"].clone()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_chunk_in_flight_when_the_cli_is_killed_is_not_resent() {
    // The third SOAP call runs, then its answer is held back for 20 s.
    let (dir, sandbox, leads) = delayed("kill", 500, Duration::from_secs(20), 3);
    let record = dir.path("run1.jsonl");
    let child = cli(&sandbox, &["--leads-file", &leads])
        .stdout(Stdio::from(std::fs::File::create(&record).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    // Chunk 2 was sent and ran; its answer has not come: kill the CLI.
    wait_for("chunk 2 to run and its sending line", || {
        sandbox.fault_log().iter().any(|e| e.call == 3 && e.ran)
            && std::fs::read_to_string(&record)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .any(|l| l["chunk"] == 2 && l["status"] == "sending")
    });
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    sandbox.clear_faults();
    assert_eq!(served(&sandbox), (1..=300).collect::<Vec<_>>());
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        lines(&text)
            .iter()
            .any(|l| l["chunk"] == 2 && l["status"] == "sending"),
        "{text}"
    );
    assert!(
        !lines(&text)
            .iter()
            .any(|l| l["chunk"] == 2 && l["status"] != "sending"),
        "{text}"
    );

    // Resume: chunk 2 is not resent, and said to be unknown.
    let (code, stdout, stderr) = run(&mut cli(
        &sandbox,
        &["--leads-file", &leads, "--resume", &record],
    ));
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("chunk 2 (leads 201-300"), "{stderr}");
    let u = Some("unknown".to_owned());
    assert_eq!(
        outcomes(&stdout),
        [
            (0, "accepted".into(), None, true),
            (1, "accepted".into(), None, true),
            (2, "failed".into(), u.clone(), true),
            (3, "accepted".into(), None, false),
            (4, "accepted".into(), None, false),
        ]
    );
    let s = summary(&stdout);
    assert_eq!(s["complete"], false);
    assert_eq!(s["unknown"], 1);
    assert_eq!(s["accepted"], 4);
    assert_eq!(
        served(&sandbox),
        (1..=500).collect::<Vec<_>>(),
        "every lead ran once"
    );

    // And from that resume's output: nothing is sent, still unknown.
    let record2 = dir.file("run2.jsonl", &stdout);
    let (code, stdout, stderr) = run(&mut cli(
        &sandbox,
        &["--leads-file", &leads, "--resume", &record2],
    ));
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(outcomes(&stdout).len(), 5);
    assert_eq!(summary(&stdout)["complete"], false);
    assert_eq!(served(&sandbox), (1..=500).collect::<Vec<_>>());
}

#[test]
fn a_resume_after_unknown_chunks_is_incomplete() {
    let dir = resume_dir("unknown");
    // The second SOAP call runs, and its answer is cut: unknown.
    let sandbox = sandbox(
        500,
        vec![FaultRule::on_call(Fault::ResetMidResponse, 2).api(Api::Soap)],
    );
    let leads = ids_file(&dir, 500);
    let (code, stdout, stderr) = run(&mut cli(&sandbox, &["--leads-file", &leads]));
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(summary(&stdout)["complete"], false);
    assert!(outcomes(&stdout).contains(&(1, "failed".into(), Some("unknown".into()), false)));
    let record = dir.file("run1.jsonl", &stdout);
    assert_eq!(served(&sandbox), (1..=200).collect::<Vec<_>>());

    let (code, stdout, stderr) = run(&mut cli(
        &sandbox,
        &["--leads-file", &leads, "--resume", &record],
    ));
    assert_eq!(code, 4, "chunk 1 may have run twice or never: {stderr}");
    let s = summary(&stdout);
    assert_eq!(
        (s["complete"].clone(), s["unknown"].clone()),
        (false.into(), 1.into())
    );
    assert_eq!(
        outcomes(&stdout)[1],
        (1, "failed".into(), Some("unknown".into()), true)
    );
    assert_eq!(outcomes(&stdout).len(), 5);
    assert_eq!(served(&sandbox), (1..=500).collect::<Vec<_>>());

    let record = dir.file("run2.jsonl", &stdout);
    let (code, stdout, stderr) = run(&mut cli(
        &sandbox,
        &["--leads-file", &leads, "--resume", &record],
    ));
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(summary(&stdout)["complete"], false);
    assert_eq!(
        served(&sandbox),
        (1..=500).collect::<Vec<_>>(),
        "nothing resent"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_record_that_cannot_be_written_sends_nothing() {
    let dir = resume_dir("full");
    let sandbox = sandbox(300, Vec::new());
    let leads = ids_file(&dir, 300);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (code, _, stderr) = run(cli(&sandbox, &["--leads-file", &leads]).stdout(full));
    assert_eq!(code, 2, "{stderr}");
    // Which line of which file failed, and what was sent.
    assert!(
        stderr.contains(
            "cannot write line 1 of the run's record (the sending line of chunk 0) to stdout \
             (/dev/full)"
        ) && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    assert!(served(&sandbox).is_empty(), "nothing sent without a record");
}

#[test]
fn a_record_write_failure_mid_run_stops_the_run() {
    // Chunk 1's answer comes after 5 s, while the reader goes away (long
    // enough for a loaded machine: the reader must be gone before it).
    let (_dir, sandbox, leads) = delayed("pipe", 1000, Duration::from_secs(5), 2);
    let mut child = cli(&sandbox, &["--leads-file", &leads])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "no sending line for chunk 1"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        if value["chunk"] == 1 && value["status"] == "sending" {
            break;
        }
    }
    drop(out); // the record can no longer be written
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    // The first line that could not be written is the outcome of chunk 0
    // or 1, or, when chunk 0's outcome reached the pipe before the reader
    // went (the reporter and this test race on a loaded machine), the
    // sending line of chunk 2, which is then not sent.
    assert!(
        [
            "line 3 of the run's record (the outcome of chunk 0)",
            "line 4 of the run's record (the outcome of chunk 1)",
            "line 4 of the run's record (the sending line of chunk 2)"
        ]
        .iter()
        .any(|line| stderr.contains(line)),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 chunks (200 leads) had been sent (2 accepted, 0 failed)"),
        "{stderr}"
    );
    assert_eq!(
        served(&sandbox),
        (1..=200).collect::<Vec<_>>(),
        "no chunk sent after the failed write"
    );
}

/// `--campaign-name "Send Webinar Reminder" --program-name Webinars` with
/// `tokens`, then `extra`.
fn webinar<'a>(tokens: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--campaign-name",
        "Send Webinar Reminder",
        "--program-name",
        "Webinars",
    ];
    for token in tokens {
        args.extend(["--token", token]);
    }
    args.extend(extra);
    args
}

#[test]
fn a_resume_for_another_request_is_refused() {
    let dir = resume_dir("request");
    let sandbox = sandbox(300, Vec::new());
    let leads = ids_file(&dir, 300);
    let title = "{{my.WebinarTitle}}=Rust";
    let link = "{{my.JoinLink}}=https://x.example/j?a=1";
    let (code, stdout, stderr) = run(&mut cli_for(
        &sandbox,
        &webinar(&[title, link], &[]),
        &["--leads-file", &leads],
    ));
    assert_eq!(code, 0, "{stderr}");
    let record = dir.file("run1.jsonl", &stdout);
    assert_eq!(served(&sandbox), (1..=300).collect::<Vec<_>>());
    // Each of these would skip the three chunks accepted for the first
    // request: its leads would never get this one.
    for (name, target) in [
        ("another campaign", vec!["--campaign-id", "4496"]),
        (
            "another token value",
            webinar(&["{{my.WebinarTitle}}=Go", link], &[]),
        ),
        ("a token fewer", webinar(&[title], &[])),
        (
            "another program",
            vec![
                "--campaign-name",
                "Send Webinar Reminder",
                "--program-name",
                "Webinars 2",
                "--token",
                title,
                "--token",
                link,
            ],
        ),
        (
            "another source",
            webinar(&[title, link], &["--source", "SALES"]),
        ),
    ] {
        let (code, stdout, stderr) = run(&mut cli_for(
            &sandbox,
            &target,
            &["--leads-file", &leads, "--resume", &record],
        ));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(
            stderr.contains("another request") && stderr.contains("run1.jsonl"),
            "{name}: {stderr}"
        );
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert_eq!(
            served(&sandbox),
            (1..=300).collect::<Vec<_>>(),
            "{name}: nothing sent"
        );
    }
    // The same request, its tokens in another order: nothing to resend.
    let (code, stdout, stderr) = run(&mut cli_for(
        &sandbox,
        &webinar(&[link, title], &["--source", "mktows"]),
        &["--leads-file", &leads, "--resume", &record],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        outcomes(&stdout),
        (0..3)
            .map(|i| (i, "accepted".into(), None, true))
            .collect::<Vec<_>>()
    );
    assert_eq!(served(&sandbox), (1..=300).collect::<Vec<_>>());
}

#[test]
fn a_record_that_does_not_name_its_request_is_refused() {
    let dir = resume_dir("norequest");
    let sandbox = sandbox(300, Vec::new());
    let leads = ids_file(&dir, 300);
    let (code, stdout, stderr) = run(&mut cli(&sandbox, &["--leads-file", &leads]));
    assert_eq!(code, 0, "{stderr}");
    // As written before records named their request: the same lines
    // without "request".
    let old: String = lines(&stdout)
        .into_iter()
        .map(|mut l| {
            l.as_object_mut().unwrap().remove("request");
            format!("{l}\n")
        })
        .collect();
    // Two runs' records for different requests, pasted together.
    let mixed: String = lines(&stdout)
        .into_iter()
        .map(|mut l| {
            if l["chunk"] == 1 {
                l["request"] = "0".repeat(40).into();
            }
            format!("{l}\n")
        })
        .collect();
    for (name, text, says) in [
        ("old", old, "older marketo-campaign"),
        ("mixed", mixed, "several requests"),
    ] {
        let record = dir.file("record.jsonl", &text);
        let (code, stdout, stderr) = run(&mut cli(
            &sandbox,
            &["--leads-file", &leads, "--resume", &record],
        ));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
    }
    assert_eq!(served(&sandbox), (1..=300).collect::<Vec<_>>());
}
