//! `--backend ajo` on the command line: requests, bulk runs and errors
//! through Journey Optimizer, against the embedded sandbox.

use crate::common;

use std::process::Command;

use serde_json::{json, Value};

use common::{cli, request_help, run, SandboxProcess};

/// The sandbox's Journey Optimizer campaign for the README's webinar.
const WEBINAR: &str = "7c1e4b2a-9d3f-4e61-a8b5-3f2d1c0b1234";

/// The README's webinar example: campaign 1234, three My Tokens.
const WEBINAR_ARGS: [&str; 8] = [
    "--campaign-id",
    "1234",
    "--token",
    "{{my.WebinarTitle}}=Migrating off SOAP",
    "--token",
    "{{my.JoinLink}}=https://example.com/join",
    "--token",
    "{{my.WebinarImage}}=https://example.com/webinar.png",
];

/// `request --backend ajo ARGS...` with the AJO configuration of
/// `sandbox`.
fn ajo(sandbox: &SandboxProcess, args: &[&str]) -> Command {
    let mut command = cli(&[&["request", "--backend", "ajo"], args].concat());
    sandbox.ajo_env(&mut command);
    command
}

fn webinar_context() -> Value {
    json!({
        "WebinarTitle": "Migrating off SOAP",
        "JoinLink": "https://example.com/join",
        "WebinarImage": "https://example.com/webinar.png",
    })
}

#[test]
fn the_readme_webinar_example_runs_on_the_embedded_sandbox_over_ajo() {
    let args = [
        &["request", "--sandbox", "--backend", "ajo", "--json"][..],
        &WEBINAR_ARGS,
        &["--lead", "EMAIL:lead@company.com"],
    ]
    .concat();
    let (code, stdout, stderr) = run(&mut cli(&args));
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert!(out["client"]
        .as_str()
        .unwrap()
        .starts_with("Ajo(http://127.0.0.1:"));
    let journal = out["sandbox_journal"].as_array().unwrap();
    assert_eq!(journal.len(), 1, "{stdout}");
    let entry = &journal[0];
    assert_eq!(entry["api"], "ajo");
    assert_eq!(entry["lead_ids"], json!([1002200]));
    assert_eq!(entry["ajo"]["campaign_id"], WEBINAR);
    assert_eq!(
        entry["ajo"]["execution_id"],
        out["chunks"][0]["execution_id"]
    );
    let recipients = entry["ajo"]["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0]["user_id"], "lead@company.com");
    assert_eq!(recipients[0]["namespace"], "email");
    assert_eq!(recipients[0]["context"], webinar_context());
    // The human form names the execution.
    let args = [
        &["request", "--sandbox", "--backend", "ajo"][..],
        &WEBINAR_ARGS,
        &["--lead", "EMAIL:lead@company.com"],
    ]
    .concat();
    let (code, stdout, stderr) = run(&mut cli(&args));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("chunk 0: execution HUMA-"), "{stdout}");
}

fn map_file(dir: &str, json: &Value) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ajo-map-{dir}-{}.json", std::process::id()));
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

#[test]
fn environment_and_campaign_map_file_configure_the_ajo_backend() {
    let sandbox = SandboxProcess::start(&[]);
    let map = map_file(
        "named",
        &json!({"campaigns": [
            {"campaign": "Send Webinar Reminder", "program": "Webinars", "ajo_campaign_id": WEBINAR}
        ]}),
    );
    let map_arg = map.to_str().unwrap();
    let named = [
        "--campaign-map",
        map_arg,
        "--campaign-name",
        "Send Webinar Reminder",
        "--program-name",
        "Webinars",
    ];
    let leads = [
        "--lead",
        "EMAIL:lead@company.com",
        "--lead",
        "EMAIL:anotherlead@company.com",
    ];
    let mut command = ajo(&sandbox, &[&named[..], &WEBINAR_ARGS[2..], &leads].concat());
    let (code, stdout, stderr) = run(&mut command);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("accepted for 2 lead(s)"), "{stdout}");
    let journal = sandbox.journal();
    assert_eq!(journal.as_array().unwrap().len(), 1);
    assert_eq!(journal[0]["api"], "ajo");
    assert_eq!(journal[0]["ajo"]["campaign_id"], WEBINAR);
    assert_eq!(journal[0]["lead_ids"], json!([1002200, 1002201]));
    for recipient in journal[0]["ajo"]["recipients"].as_array().unwrap() {
        assert_eq!(recipient["context"], webinar_context());
    }
    // Without the map, the Marketo campaign has no AJO campaign: exit
    // 2, nothing sent.
    let mut command = ajo(
        &sandbox,
        &["--campaign-id", "1234", "--lead", "EMAIL:lead@company.com"],
    );
    let (code, _, stderr) = run(&mut command);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("campaign map"), "{stderr}");
    // A key type with no namespace: exit 2, naming it; --namespace maps it.
    let mut command = ajo(
        &sandbox,
        &["--ajo-campaign-id", WEBINAR, "--lead", "IDNUM:1002200"],
    );
    let (code, _, stderr) = run(&mut command);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("IDNUM"), "{stderr}");
    let mut command = ajo(
        &sandbox,
        &[
            "--ajo-campaign-id",
            WEBINAR,
            "--namespace",
            "IDNUM=marketoId",
            "--lead",
            "IDNUM:1002200",
        ],
    );
    let (code, _, stderr) = run(&mut command);
    assert_eq!(code, 0, "{stderr}");
    let journal = sandbox.journal();
    assert_eq!(journal.as_array().unwrap().len(), 2);
    assert_eq!(journal[1]["ajo"]["recipients"][0]["namespace"], "marketoId");
    // A missing variable is a configuration error naming both names.
    let mut command = ajo(
        &sandbox,
        &["--ajo-campaign-id", WEBINAR, "--lead", "EMAIL:a@b.c"],
    );
    command.env_remove("AJO_CLIENT_ID");
    let (code, _, stderr) = run(&mut command);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("AJO_CLIENT_ID") && stderr.contains("ADOBE_CLIENT_ID"),
        "{stderr}"
    );
    assert_eq!(sandbox.journal().as_array().unwrap().len(), 2);
    let _ = std::fs::remove_file(map);
}

#[test]
fn a_bulk_run_goes_in_chunks_of_twenty_and_resumes_what_was_refused() {
    let sandbox = SandboxProcess::start(&[]);
    let file = std::env::temp_dir().join(format!("ajo-leads-{}.txt", std::process::id()));
    let lines: Vec<String> = (1..=45)
        .map(|i| format!("EMAIL:lead{i}@example.com"))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file_arg = file.to_str().unwrap();
    // The 2nd execution is refused (403): run nothing.
    let rule = json!({"fault": {"kind": "http_status", "status": 403, "body": true}, "api": "ajo", "on_call": 2});
    let faults = sandbox
        .get("journal")
        .replace("/sandbox/journal", "/sandbox/faults");
    let status = test_support::http::agent()
        .post(&faults)
        .send(rule.to_string())
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 201);
    let args = [
        "request",
        "--backend",
        "ajo",
        "--json",
        "--workers",
        "1",
        "--ajo-campaign-id",
        WEBINAR,
        "--leads-file",
        file_arg,
    ];
    let (code, record, stderr) = run(sandbox.ajo_env(&mut cli(&args)));
    assert_eq!(code, 3, "{stderr}");
    let lines: Vec<Value> = record
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sizes: Vec<u64> = lines
        .iter()
        .filter(|l| l["status"] == "sending")
        .map(|l| l["leads"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sizes,
        [20, 20],
        "chunk 1 refused, chunk 2 not attempted: {record}"
    );
    let accepted: Vec<&Value> = lines.iter().filter(|l| l["status"] == "accepted").collect();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0]["execution_id"]
        .as_str()
        .unwrap()
        .starts_with("HUMA-"));
    let saved = std::env::temp_dir().join(format!("ajo-record-{}.jsonl", std::process::id()));
    std::fs::write(&saved, &record).unwrap();
    // Resumed: chunk 0 carried over, chunks 1 and 2 sent.
    let resume = [&args[..], &["--resume", saved.to_str().unwrap()]].concat();
    let (code, _, stderr) = run(sandbox.ajo_env(&mut cli(&resume)));
    assert_eq!(code, 0, "{stderr}");
    let journal = sandbox.journal();
    let mut sent: Vec<String> = journal
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["ajo"]["recipients"].as_array().unwrap().clone())
        .map(|r| r["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(journal.as_array().unwrap().len(), 3);
    sent.sort();
    let before = sent.len();
    sent.dedup();
    assert_eq!((before, sent.len()), (45, 45), "every lead once");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(saved);
}

#[test]
fn dry_run_json_shows_the_exact_requests_with_secrets_redacted() {
    let sandbox = SandboxProcess::start(&[]);
    let args = [
        &["--dry-run", "--json", "--ajo-campaign-id", WEBINAR][..],
        &WEBINAR_ARGS[2..],
        &["--lead", "EMAIL:lead@company.com"],
    ]
    .concat();
    let (code, stdout, stderr) = run(&mut ajo(&sandbox, &args));
    assert_eq!(code, 0, "{stderr}");
    let secret = sandbox.get("ajo_client_secret");
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    let plans: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0]["method"], "POST");
    assert_eq!(plans[0]["url"], sandbox.get("ims_token_url"));
    assert!(plans[0]["body"]
        .as_str()
        .unwrap()
        .contains("&client_secret=[redacted]&"));
    assert_eq!(
        plans[1]["url"],
        format!("{}/ajo/im/executions/unitary", sandbox.get("ajo_endpoint"))
    );
    assert_eq!(plans[1]["headers"]["Authorization"], "Bearer [redacted]");
    assert_eq!(
        plans[1]["headers"]["x-sandbox-name"],
        sandbox.get("ajo_sandbox_name")
    );
    let body: Value = serde_json::from_str(plans[1]["body"].as_str().unwrap()).unwrap();
    // The body AjoClient writes (the library's tests/ajo.rs validates its
    // bodies against the schema): the same fields, with this run's values.
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&body), ["campaignId", "recipients", "requestId"]);
    assert_eq!(body["campaignId"], WEBINAR);
    assert_eq!(
        keys(&body["recipients"][0]),
        ["context", "namespace", "type", "userId"]
    );
    assert_eq!(body["requestId"], plans[1]["headers"]["x-request-id"]);
    assert_eq!(body["recipients"][0]["context"], webinar_context());
    assert_eq!(sandbox.journal(), json!([]), "nothing was sent");
}

#[test]
fn ajo_only_options_are_refused_with_other_backends() {
    for (backend, args) in [
        (
            "rest",
            &[
                "--ajo-campaign-id",
                WEBINAR,
                "--lead",
                "EMAIL:lead@company.com",
            ][..],
        ),
        (
            "soap",
            &[
                "--ajo-campaign-id",
                WEBINAR,
                "--lead",
                "EMAIL:lead@company.com",
            ],
        ),
        (
            "rest",
            &[
                "--campaign-map",
                "/nonexistent",
                "--campaign-id",
                "1234",
                "--lead",
                "EMAIL:lead@company.com",
            ],
        ),
        (
            "auto",
            &[
                "--namespace",
                "IDNUM=x",
                "--campaign-id",
                "1234",
                "--lead",
                "EMAIL:lead@company.com",
            ],
        ),
        (
            "ajo",
            &[
                "--timestamp",
                "2010-04-09T14:04:54-07:00",
                "--campaign-id",
                "1234",
                "--lead",
                "EMAIL:lead@company.com",
            ],
        ),
    ] {
        let args = [&["request", "--sandbox", "--backend", backend][..], args].concat();
        let (code, stdout, stderr) = run(&mut cli(&args));
        assert_eq!(code, 2, "{args:?}: {stdout} {stderr}");
    }
    let stdout = request_help();
    for needle in [
        "ajo",
        "AJO_CLIENT_ID",
        "AJO_CLIENT_SECRET",
        "AJO_ORG_ID",
        "AJO_SANDBOX_NAME",
        "ADOBE_",
        "--campaign-map",
        "--ajo-campaign-id",
        "--namespace",
    ] {
        assert!(stdout.contains(needle), "--help lacks {needle}");
    }
}
