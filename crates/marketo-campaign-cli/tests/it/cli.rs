//! The command line, run as a process: output, exit codes, secrets.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{cli, request_help, run, Dir, SandboxProcess};
const USER: &str = "bigcorp1_461839624B16E06BA2D663";
const KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";

/// `request ARGS... --campaign-id 4496 --lead EMAIL:lead@company.com`.
fn demo(args: &[&str]) -> Command {
    campaign("4496", args)
}

/// `request ARGS... --campaign-id ID --lead EMAIL:lead@company.com`.
fn campaign(id: &str, args: &[&str]) -> Command {
    cli(&[
        &["request"][..],
        args,
        &["--campaign-id", id, "--lead", "EMAIL:lead@company.com"],
    ]
    .concat())
}

/// A sandbox process, and `request --backend rest FLAGS... --campaign-id
/// 4496 --lead LEAD...` run against it.
fn rest_4496(flags: &[&str], leads: &[&str]) -> (SandboxProcess, (i32, String, String)) {
    let sandbox = SandboxProcess::start(&[]);
    let mut args = [
        &["request", "--backend", "rest"][..],
        flags,
        &["--campaign-id", "4496"],
    ]
    .concat();
    for lead in leads {
        args.extend(["--lead", lead]);
    }
    let outcome = run(sandbox.rest_env(&mut cli(&args)));
    (sandbox, outcome)
}

#[test]
fn readme_request_against_the_embedded_sandbox() {
    let (code, stdout, stderr) = run(&mut demo(&["--sandbox"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("campaign 4496 accepted for 1 lead(s)"),
        "{stdout}"
    );
}

#[test]
fn dry_run_reproduces_the_published_signature_and_sends_nothing() {
    let sandbox = SandboxProcess::start(&[]);
    let (code, stdout, stderr) = run(sandbox.soap_env(&mut demo(&[
        "--backend",
        "soap",
        "--dry-run",
        "--json",
        "--timestamp",
        "2010-04-09T14:04:54-07:00",
    ])));
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    let plan: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(plan["method"], "POST");
    assert_eq!(plan["url"], sandbox.get("soap_endpoint"));
    assert_eq!(
        plan["headers"]["SOAPAction"],
        "\"http://www.marketo.com/mktows/requestCampaign\""
    );
    let body = plan["body"].as_str().unwrap();
    assert!(body
        .contains("<requestSignature>ffbff4d4bef354807481e66dc7540f7890523a87</requestSignature>"));
    assert!(body.contains("<requestTimestamp>2010-04-09T14:04:54-07:00</requestTimestamp>"));
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    assert_eq!(sandbox.journal(), serde_json::json!([]));
}

#[test]
fn dry_run_prints_one_request_per_chunk() {
    let leads: String = (1..=250).map(|i| format!("IDNUM:{i}\n")).collect();
    let mut child = cli(&[
        "request",
        "--sandbox",
        "--dry-run",
        "--json",
        "--campaign-id",
        "4496",
        "--leads-file",
        "-",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("# ids\n\n{leads}").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let counts: Vec<usize> = stdout
        .lines()
        .map(|l| {
            let plan: serde_json::Value = serde_json::from_str(l).unwrap();
            plan["body"].as_str().unwrap().matches("<leadKey>").count()
        })
        .collect();
    assert_eq!(counts, [100, 100, 50]);
}

#[test]
fn sandbox_command_with_config_serves_a_leads_file_request() {
    let dir = std::env::temp_dir().join(format!("mc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let leads: Vec<serde_json::Value> = (1..=150)
        .map(|id| serde_json::json!({"id": id, "email": format!("l{id}@x.example")}))
        .collect();
    let config = dir.join("sandbox.json");
    std::fs::write(
        &config,
        serde_json::json!({"campaigns": [{"id": 42, "name": "C", "program": "P"}], "leads": leads})
            .to_string(),
    )
    .unwrap();
    let leads_file = dir.join("leads.txt");
    std::fs::write(
        &leads_file,
        (1..=150)
            .map(|id| format!("EMAIL:l{id}@x.example\r\n"))
            .collect::<String>(),
    )
    .unwrap();
    let sandbox = SandboxProcess::start(&["--config", config.to_str().unwrap()]);
    let (code, stdout, stderr) = run(sandbox.soap_env(&mut cli(&[
        "request",
        "--campaign-name",
        "C",
        "--program-name",
        "P",
        "--token",
        "{{my.A}}=x=y & z",
        "--leads-file",
        leads_file.to_str().unwrap(),
        "--json",
    ])));
    assert_eq!(code, 0, "{stderr}");
    // One line per chunk as it finishes (after its write-ahead "sending"
    // line), then a summary line.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["status"] != "sending")
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let mut chunks: Vec<(u64, &str, u64)> = lines[..2]
        .iter()
        .map(|l| {
            (
                l["chunk"].as_u64().unwrap(),
                l["status"].as_str().unwrap(),
                l["leads"].as_u64().unwrap(),
            )
        })
        .collect();
    chunks.sort();
    assert_eq!(chunks, [(0, "accepted", 100), (1, "accepted", 50)]);
    assert_eq!(lines[2]["summary"]["complete"], true);
    assert_eq!(lines[2]["summary"]["leads"], 150);
    let journal = sandbox.journal();
    let journal = journal.as_array().unwrap();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0]["campaign_id"], 42);
    assert_eq!(
        journal[0]["tokens"],
        serde_json::json!([{"name": "{{my.A}}", "value": "x=y & z"}])
    );
    let served: usize = journal
        .iter()
        .map(|e| e["lead_ids"].as_array().unwrap().len())
        .sum();
    assert_eq!(served, 150);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_exits_2_and_sends_nothing() {
    let sandbox = SandboxProcess::start(&[]);
    for args in [
        &["--campaign-id", "4496", "--lead", "EMAIL"][..],
        &["--campaign-id", "4496", "--lead", "PHONE:1"],
        &["--campaign-id", "4496", "--lead", "IDNUM:abc"],
        &["--campaign-id", "4496", "--lead", "EMAIL: "],
        &["--campaign-id", "0", "--lead", "EMAIL:lead@company.com"],
        &[
            "--campaign-name",
            "C",
            "--program-name",
            "P",
            "--token",
            "X=1",
            "--lead",
            "IDNUM:1",
        ],
        &[
            "--campaign-id",
            "4496",
            "--campaign-name",
            "C",
            "--program-name",
            "P",
            "--lead",
            "IDNUM:1",
        ],
        &[
            "--campaign-id",
            "4496",
            "--token",
            "{{my.X}}=1",
            "--lead",
            "IDNUM:1",
        ],
        &["--campaign-id", "4496"],
        &[
            "--campaign-id",
            "4496",
            "--lead",
            "IDNUM:1",
            "--source",
            "WEB",
        ],
        &[
            "--campaign-id",
            "4496",
            "--lead",
            "IDNUM:1",
            "--timestamp",
            "yesterday",
        ],
        &[
            "--campaign-id",
            "4496",
            "--leads-file",
            "/nonexistent/leads.txt",
        ],
    ] {
        let (code, _, stderr) = run(sandbox.soap_env(&mut cli(&[&["request"], args].concat())));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(!stderr.is_empty());
    }
    assert_eq!(sandbox.journal(), serde_json::json!([]));
}

/// Defect 8: `--timestamp yesterday` was parsed only when a SOAP client was
/// built, so with `--backend rest` it was ignored and the campaign ran.
#[test]
fn timestamp_is_checked_whatever_the_backend_and_refused_without_soap() {
    let sandbox = SandboxProcess::start(&[]);
    let dir = Dir::new("cli-ts");
    let leads_file = dir.file("leads.txt", "EMAIL:lead@company.com\n");
    let leads_file = leads_file.as_str();
    let lead = ["--lead", "EMAIL:lead@company.com"];
    let file = ["--leads-file", leads_file];
    for backend in ["rest", "soap", "auto"] {
        for leads in [&lead, &file] {
            for timestamp in [
                "yesterday",
                "2010-04-09 14:04:54",
                "2010-13-09T14:04:54-07:00",
                "",
            ] {
                let args = [
                    &["request", "--backend", backend, "--campaign-id", "4496"][..],
                    &leads[..],
                    &["--timestamp", timestamp],
                ]
                .concat();
                let (code, stdout, stderr) =
                    run(sandbox.rest_env(sandbox.soap_env(&mut cli(&args))));
                assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
                assert!(stderr.contains("--timestamp"), "{args:?}: {stderr}");
                assert!(stderr.contains("W3C timestamp"), "{args:?}: {stderr}");
            }
        }
    }
    // A well-formed timestamp means nothing to REST: refused, not ignored.
    let pinned = ["--timestamp", "2010-04-09T14:04:54-07:00"];
    for leads in [&lead, &file] {
        let args = [
            &["request", "--backend", "rest", "--campaign-id", "4496"][..],
            &leads[..],
            &pinned,
        ]
        .concat();
        let (code, _, stderr) = run(sandbox.rest_env(sandbox.soap_env(&mut cli(&args))));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("--timestamp") && stderr.contains("no SOAP request"),
            "{stderr}"
        );
        // auto with REST alone configured: the same.
        let args = [
            &["request", "--campaign-id", "4496"][..],
            &leads[..],
            &pinned,
        ]
        .concat();
        let (code, _, stderr) = run(sandbox.rest_env(&mut cli(&args)));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("SOAP is not configured"), "{stderr}");
    }
    assert_eq!(sandbox.journal(), serde_json::json!([]));
    // Still usable where it means something.
    let soap = ["--backend", "soap", "--dry-run"];
    let timestamp = ["--timestamp", "2010-04-09T14:04:54-07:00"];
    let (code, stdout, stderr) =
        run(sandbox.soap_env(&mut demo(&[&soap[..], &timestamp].concat())));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("<requestTimestamp>2010-04-09T14:04:54-07:00</requestTimestamp>"),
        "{stdout}"
    );
    let help = request_help();
    assert!(help.contains("SOAP requests only"), "{help}");
}

/// Defect 8: lead values over Marketo's field limits are refused before
/// sending (a 1 MB value used to go out over SOAP, and to be reported as
/// "matched no lead" over REST without any look-up).
#[test]
fn lead_values_over_field_limits_exit_2_and_send_nothing() {
    let sandbox = SandboxProcess::start(&[]);
    let dir = Dir::new("cli-limits");
    let huge = dir.file(
        "huge.txt",
        &format!(
            "EMAIL:lead@company.com\nEMAIL:{}@company.com\n",
            "x".repeat(1 << 20)
        ),
    );
    let huge_csv = dir.file(
        "huge.csv",
        &format!(
            "type,value\nEMAIL,lead@company.com\nCOOKIE,{}\n",
            "c".repeat(4097)
        ),
    );
    let long_email = format!("EMAIL:{}@company.com", "x".repeat(244)); // 256 characters
    let long_sfdc = "SFDCLEADID:00Q5e00000AbCdEFGHI".to_owned(); // 19 characters
    for backend in ["soap", "rest"] {
        let base = ["request", "--backend", backend, "--campaign-id", "4496"];
        for extra in [
            vec![
                "--lead",
                "EMAIL:lead@company.com",
                "--lead",
                long_email.as_str(),
            ],
            vec!["--lead", long_sfdc.as_str()],
            vec!["--leads-file", &huge],
            vec!["--leads-file", &huge_csv],
            vec!["--leads-file", &huge, "--json"],
        ] {
            let args = [&base[..], &extra].concat();
            let (code, stdout, stderr) = run(sandbox.rest_env(sandbox.soap_env(&mut cli(&args))));
            assert_eq!(code, 2, "{backend} {extra:?}: {stdout}{stderr}");
            assert!(stderr.contains("more than"), "{backend}: {stderr}");
            // The value is not echoed whole.
            assert!(
                stderr.len() + stdout.len() < 2_000,
                "{} bytes",
                stderr.len()
            );
        }
    }
    assert_eq!(sandbox.journal(), serde_json::json!([]));
    // At the limits, the same leads go through.
    let at_limit = format!("EMAIL:{}@company.com", "x".repeat(243));
    let (code, _, stderr) = run(sandbox.soap_env(&mut cli(&[
        "request",
        "--dry-run",
        "--campaign-id",
        "4496",
        "--lead",
        &at_limit,
        "--lead",
        "SFDCLEADID:00Q5e00000AbCdEFGH",
    ])));
    assert_eq!(code, 0, "{stderr}");
}

/// Defect 12: `sandbox --listen 0.0.0.0:PORT` exposed the unauthenticated
/// administration API (faults, journal) to the network.
#[test]
fn sandbox_refuses_non_loopback_addresses_unless_allowed() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        // A sandbox that starts serves until killed: give it 10 s to refuse.
        let mut child = cli(&["sandbox", "--listen", addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the sandbox started on {addr}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let code = output.status.code().unwrap();
        let (stdout, stderr) = (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        );
        assert_eq!(code, 2, "{addr}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{addr}: started: {stdout}");
        assert!(
            stderr.contains("loopback only") && stderr.contains("--allow-non-loopback"),
            "{addr}: {stderr}"
        );
    }
    // With the flag the address is tried (192.0.2.1 is TEST-NET: binding it
    // fails here, so no port is opened to the network).
    let (code, _, stderr) = run(&mut cli(&[
        "sandbox",
        "--listen",
        "192.0.2.1:0",
        "--allow-non-loopback",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(!stderr.contains("loopback only"), "{stderr}");
    assert!(stderr.contains("cannot listen on 192.0.2.1:0"), "{stderr}");
    let (_, help, _) = run(&mut cli(&["sandbox", "--help"]));
    assert!(help.contains("--allow-non-loopback"), "{help}");
}

#[test]
fn missing_configuration_exits_2() {
    let args = ["request", "--campaign-id", "4496", "--lead", "IDNUM:1"];
    let (code, _, stderr) = run(&mut cli(&args));
    assert_eq!(code, 2);
    assert!(stderr.contains("MARKETO_SOAP_ENDPOINT"), "{stderr}");
}

#[test]
fn refused_exits_3_and_wrong_key_is_not_printed() {
    let sandbox = SandboxProcess::start(&[]);
    let (code, _, stderr) = run(sandbox.soap_env(&mut campaign("5000", &[])));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("20113"), "{stderr}");

    let (code, stdout, stderr) = run(sandbox
        .soap_env(&mut demo(&["--json"]))
        .env("MARKETO_SOAP_ENCRYPTION_KEY", "not-the-key-s3cr3t"));
    assert_eq!(code, 3);
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["soap_code"], 20014);
    assert_eq!(outcome["delivery"], "refused");
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"));
    assert_eq!(sandbox.journal(), serde_json::json!([]));
}

/// `request --campaign-id 4496 --lead EMAIL:lead@company.com` against a
/// SOAP endpoint, with the published credentials.
fn request_at(endpoint: impl AsRef<std::ffi::OsStr>) -> (i32, String, String) {
    run(demo(&[])
        .env("MARKETO_SOAP_ENDPOINT", endpoint)
        .env("MARKETO_SOAP_USER_ID", USER)
        .env("MARKETO_SOAP_ENCRYPTION_KEY", KEY))
}

#[test]
fn unknown_delivery_exits_4() {
    // A server that answers 200 with something that is not SOAP.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let handle = std::thread::spawn(move || {
        let request = server.recv().unwrap();
        request
            .respond(tiny_http::Response::from_string("<html>maintenance</html>"))
            .unwrap();
    });
    let (code, _, stderr) = request_at(format!("http://{addr}/soap/mktows/2_9"));
    handle.join().unwrap();
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("may or may not have run"), "{stderr}");
    assert!(stderr.contains("maintenance"), "{stderr}");
}

#[test]
fn unreachable_server_exits_5() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, stderr) = request_at(format!("http://127.0.0.1:{port}/soap/mktows/2_9"));
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let (code, _, stderr) = request_at("http://123-abc-456.mktoapi.com/soap/mktows/2_9");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("plain http"), "{stderr}");
}

#[test]
fn help_explains_exit_codes_and_environment() {
    let stdout = request_help();
    for needle in [
        "--campaign-id",
        "--leads-file",
        "Exit status",
        "MARKETO_SOAP_ENCRYPTION_KEY",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from --help");
    }
}

#[test]
fn rest_backend_against_the_embedded_sandbox() {
    let (code, stdout, stderr) = run(&mut cli(&[
        "request",
        "--sandbox",
        "--backend",
        "rest",
        "--campaign-name",
        "Send Webinar Reminder",
        "--program-name",
        "Webinars",
        "--token",
        "{{my.WebinarTitle}}=REST",
        "--lead",
        "EMAIL:lead@company.com",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("via Rest(http://127.0.0.1:"), "{stdout}");
}

#[test]
fn auto_with_soap_retired_serves_through_rest_once() {
    let sandbox = SandboxProcess::start(&["--retire-soap", "410"]);
    let mut command = cli(&[
        "request",
        "--json",
        "--campaign-name",
        "Send Webinar Reminder",
        "--program-name",
        "Webinars",
        "--token",
        "{{my.WebinarTitle}}=Moving on",
        "--lead",
        "EMAIL:lead@company.com",
        "--lead",
        "EMAIL:nobody@company.com",
    ]);
    let (code, stdout, stderr) = run(sandbox.rest_env(sandbox.soap_env(&mut command)));
    // One key matched no lead: reported, exit 3.
    assert_eq!(code, 3, "{stderr}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(outcome["client"]
        .as_str()
        .unwrap()
        .starts_with("Fallback(Soap("));
    assert_eq!(outcome["chunks"][0]["backend"], "rest");
    assert_eq!(outcome["chunks"][0]["status"], "accepted");
    assert_eq!(
        outcome["chunks"][0]["unmatched"],
        serde_json::json!(["EMAIL:nobody@company.com"])
    );
    let journal = sandbox.journal();
    assert_eq!(journal.as_array().unwrap().len(), 1);
    assert_eq!(journal[0]["api"], "rest");
    assert_eq!(journal[0]["lead_ids"], serde_json::json!([1002200]));
    assert_eq!(
        journal[0]["tokens"],
        serde_json::json!([{"name": "{{my.WebinarTitle}}", "value": "Moving on"}])
    );
    let secret = sandbox.get("client_secret");
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
}

#[test]
fn rest_dry_run_shows_the_look_ups_without_secrets() {
    let leads = ["IDNUM:1002200", "IDNUM:1002201"];
    let (sandbox, (code, stdout, stderr)) = rest_4496(&["--dry-run", "--json"], &leads);
    assert_eq!(code, 0, "{stderr}");
    let plans: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The token request and the id look-up; the trigger body depends on
    // the look-up's answer, so it is not planned.
    assert_eq!(plans.len(), 2, "{stdout}");
    assert_eq!(plans[0]["method"], "GET");
    let token_url = plans[0]["url"].as_str().unwrap();
    assert!(token_url.contains("/identity/oauth/token?grant_type=client_credentials"));
    assert!(
        token_url.contains("client_secret=%5Bredacted%5D"),
        "{token_url}"
    );
    assert_eq!(plans[1]["method"], "GET");
    assert_eq!(
        plans[1]["url"],
        format!(
            "{}/rest/v1/leads.json?filterType=id&filterValues=1002200,1002201&fields=id",
            sandbox.get("rest_endpoint")
        )
    );
    assert_eq!(plans[1]["headers"]["Authorization"], "Bearer [redacted]");
    assert!(!stdout.contains(&sandbox.get("client_secret")));
    assert_eq!(sandbox.journal(), serde_json::json!([]));
}

#[test]
fn json_lists_a_key_matching_several_leads_with_their_ids() {
    let leads = ["SFDCACCOUNTID:0015000000XyZaAAAV", "EMAIL:lead@company.com"];
    let (sandbox, (code, stdout, stderr)) = rest_4496(&["--json"], &leads);
    // Both default leads share the account: neither runs for that key.
    assert_eq!(code, 3, "{stderr}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["complete"], false);
    let chunk = &outcome["chunks"][0];
    assert_eq!(chunk["status"], "accepted");
    assert_eq!(
        chunk["ambiguous"],
        serde_json::json!([{"key": "SFDCACCOUNTID:0015000000XyZaAAAV", "lead_ids": [1002200, 1002201]}])
    );
    assert_eq!(
        chunk["unmatched"],
        serde_json::json!(["SFDCACCOUNTID:0015000000XyZaAAAV"])
    );
    // 1002200 ran because the EMAIL key named it alone; 1002201 did not run.
    let journal = sandbox.journal();
    assert_eq!(journal.as_array().unwrap().len(), 1);
    assert_eq!(journal[0]["lead_ids"], serde_json::json!([1002200]));
}

/// Marketo's REST tutorial: campaign 1234, lead 1002200, three My Tokens.
/// REST and auto run it over REST; SOAP cannot express an id with tokens
/// and refuses it before sending (issue 9).
#[test]
fn campaign_id_with_tokens_runs_over_rest_and_auto_and_soap_refuses_it() {
    let sandbox = SandboxProcess::start(&[]);
    let tokens = [
        ("{{my.WebinarTitle}}", "Migrating off SOAP"),
        ("{{my.JoinLink}}", "https://example.com/join?a=1&b=\"2\""),
        ("{{my.WebinarImage}}", "https://example.com/i.png"),
    ];
    let args = |backend: &'static str| {
        let mut args = vec![
            "request".to_owned(),
            "--json".to_owned(),
            "--backend".to_owned(),
            backend.to_owned(),
            "--campaign-id".to_owned(),
            "1234".to_owned(),
            "--lead".to_owned(),
            "IDNUM:1002200".to_owned(),
        ];
        for (name, value) in tokens {
            args.push("--token".to_owned());
            args.push(format!("{name}={value}"));
        }
        args
    };
    let expected_tokens: Vec<serde_json::Value> = tokens
        .iter()
        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
        .collect();
    for (n, backend) in ["rest", "auto"].into_iter().enumerate() {
        let args = args(backend);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(sandbox.rest_env(sandbox.soap_env(&mut cli(&args))));
        assert_eq!(code, 0, "{backend}: {stdout}{stderr}");
        let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(outcome["chunks"][0]["backend"], "rest", "{backend}");
        let journal = sandbox.journal();
        let runs = journal.as_array().unwrap();
        assert_eq!(runs.len(), n + 1, "{backend}: {journal}");
        let run = &runs[n];
        assert_eq!(run["api"], "rest");
        assert_eq!(run["campaign_id"], 1234);
        assert_eq!(run["lead_ids"], serde_json::json!([1002200]));
        assert_eq!(run["tokens"], serde_json::json!(expected_tokens));
    }
    let args = args("soap");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run(sandbox.rest_env(sandbox.soap_env(&mut cli(&args))));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains("campaign id alone"), "{stdout}");
    assert_eq!(
        sandbox.journal().as_array().unwrap().len(),
        2,
        "SOAP sent nothing"
    );
}
