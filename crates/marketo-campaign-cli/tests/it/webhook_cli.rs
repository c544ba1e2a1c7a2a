//! `marketo-campaign webhook render`, run as a process: stdout bytes,
//! stderr warnings, exit codes.

use crate::common;

use std::process::{Command, Output};

use common::BIN;
const JSON_HOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/webhook_webinar_json.json"
);
const FORM_HOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/webhook_webinar_form.json"
);

fn render(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(["webhook", "render"])
        .args(args)
        .output()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

const WEBINAR: [&str; 8] = [
    "--lead",
    "Email Address=lead@company.com",
    "--token",
    "{{my.WebinarTitle}}=Q&A: \"SOAP\" → REST",
    "--token",
    "{{my.JoinLink}}=https://example.com/join?a=1&b=2",
    "--token",
    "{{my.WebinarImage}}=https://example.com/w.png",
];

#[test]
fn renders_the_json_webinar_request_byte_for_byte() {
    let mut args = vec!["--webhook", JSON_HOOK];
    args.extend(WEBINAR);
    let (code, stdout, stderr) = render(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "POST https://webinars.example.com/register?source=marketo&title=Q%26A%3A%20%22SOAP%22%20%E2%86%92%20REST\n\
         Content-Type: application/json\n\
         X-Webinar: Q&A: \"SOAP\" %E2%86%92 REST\n\
         \n\
         {\"email\": \"lead@company.com\", \"title\": \"Q&A: \\\"SOAP\\\" → REST\", \"join\": \"https://example.com/join?a=1&b=2\", \"image\": \"https://example.com/w.png\"}\n"
    );
    assert_eq!(stderr, "");
}

#[test]
fn renders_the_form_request_and_json_output() {
    let mut args = vec!["--webhook", FORM_HOOK, "--json"];
    args.extend(WEBINAR);
    let (code, stdout, stderr) = render(&args);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["url"], "https://webinars.example.com/register");
    assert_eq!(
        json["headers"],
        serde_json::json!([["Content-Type", "application/x-www-form-urlencoded"]])
    );
    assert_eq!(
        json["body"],
        "email=lead%40company.com&title=Q%26A%3A+%22SOAP%22+%E2%86%92+REST\
         &join=https%3A%2F%2Fexample.com%2Fjoin%3Fa%3D1%26b%3D2&image=https%3A%2F%2Fexample.com%2Fw.png"
    );
}

#[test]
fn lead_files_program_defaults_and_unknown_tokens() {
    let dir = std::env::temp_dir().join(format!("webhook-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lead = dir.join("lead.json");
    std::fs::write(&lead, r#"{"email": "file@company.com", "id": 1002200}"#).unwrap();
    let hook = dir.join("hook.json");
    std::fs::write(
        &hook,
        r#"{"url": "https://e.com/{{lead.id}}", "request_type": "POST", "request_token_encoding": "json",
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "template": "[{{lead.id}}, {{lead.email}}, {{my.WebinarTitle}}, {{my.Nope}}, {{system.dateTime}}, {{lead.First Name}}]"}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = render(&[
        "--webhook",
        hook.to_str().unwrap(),
        "--lead",
        lead.to_str().unwrap(),
        "--program-token",
        "{{my.WebinarTitle}}=Default",
        "--now",
        "2026-11-25T15:00:00Z",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "POST https://e.com/1002200\nContent-Type: application/json\n\n\
         [1002200, \"file@company.com\", \"Default\", {{my.Nope}}, \"2026-11-25 15:00:00\", \"\"]\n"
    );
    assert!(
        stderr.contains("warning: {{my.Nope}} names no known token"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: {{lead.First Name}}: the lead has no value"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_definitions_exit_2_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("webhook-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            r#"{"url": "https://e.com", "request_type": "PUT"}"#,
            "unknown variant `PUT`",
        ),
        (
            r#"{"url": "ftp://e.com", "request_type": "POST"}"#,
            "must start with http:// or https://",
        ),
        (
            r#"{"url": "https://e.com", "request_type": "GET", "template": "x"}"#,
            "a GET request carries no body",
        ),
        (
            r#"{"url": "https://e.com", "request_type": "POST", "headers": [{"name": "X Y", "value": "v"}]}"#,
            "not an HTTP header name",
        ),
        (
            r#"{"url": "https://e.com", "request_type": "POST", "tempalte": "x"}"#,
            "unknown field `tempalte`",
        ),
        ("not json", "webhook definition"),
    ];
    for (i, (definition, message)) in cases.iter().enumerate() {
        let path = dir.join(format!("{i}.json"));
        std::fs::write(&path, definition).unwrap();
        let (code, stdout, stderr) = render(&["--webhook", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{definition}: {stderr}");
        assert_eq!(stdout, "", "{definition}");
        assert!(stderr.starts_with("error: webhook definition "), "{stderr}");
        assert!(stderr.contains(message), "{definition}: {stderr}");
    }
    let (code, _, stderr) = render(&["--webhook", "/nonexistent/hook.json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/hook.json"), "{stderr}");
    let (code, _, stderr) = render(&["--webhook", JSON_HOOK, "--token", "novalue"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--token \"novalue\""), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_explains_the_rules() {
    let output = Command::new(BIN)
        .args(["webhook", "render", "--help"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--webhook <FILE>",
        "--lead <FILE|NAME=VALUE>",
        "sent as written",
        "Exit status",
        "percent-encoded",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

const FLOW_DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/webinar_flow.json"
);

#[test]
fn a_sandbox_run_prints_its_webhook_calls_with_the_request_tokens() {
    let output = Command::new(BIN)
        .args([
            "request",
            "--sandbox",
            "--sandbox-data",
            FLOW_DATA,
            "--campaign-name",
            "Send Webinar Reminder",
            "--program-name",
            "Webinars",
            "--token",
            "{{my.WebinarTitle}}=Q&A: \"SOAP\" → REST",
            "--token",
            "{{my.JoinLink}}=https://example.com/join?a=1&b=2",
            "--lead",
            "EMAIL:lead@company.com",
            "--lead",
            "EMAIL:anotherlead@company.com",
            "--json",
        ])
        .env_remove("MARKETO_SOAP_ENDPOINT")
        .env_remove("MARKETO_REST_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let outcome: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(outcome["complete"], true);
    let flows: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    let calls = flows["webhook_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{stdout}");
    for (call, (lead_id, email)) in calls.iter().zip([
        (1002200, "lead@company.com"),
        (1002201, "anotherlead@company.com"),
    ]) {
        assert_eq!(call["lead_id"], lead_id);
        assert_eq!(call["campaign_id"], 1234);
        assert_eq!(call["status"], 200);
        assert_eq!(call["method"], "POST");
        assert!(call["url"]
            .as_str()
            .unwrap()
            .ends_with("/sandbox/echo?title=Q%26A%3A%20%22SOAP%22%20%E2%86%92%20REST"));
        assert_eq!(
            call["body"],
            format!(
                "{{\"email\": \"{email}\", \"title\": \"Q&A: \\\"SOAP\\\" → REST\", \
                 \"join\": \"https://example.com/join?a=1&b=2\", \"image\": \"https://example.com/webinar.png\"}}"
            )
        );
        assert_eq!(
            call["tokens"],
            serde_json::json!([
                {"name": "{{my.WebinarTitle}}", "value": "Q&A: \"SOAP\" → REST"},
                {"name": "{{my.JoinLink}}", "value": "https://example.com/join?a=1&b=2"}
            ])
        );
        // The echo receiver answers the body's length, mapped to the lead.
        let bytes = call["body"].as_str().unwrap().len().to_string();
        assert_eq!(
            call["mapped"],
            serde_json::json!({"webinarPayloadBytes": bytes})
        );
    }
}

#[test]
fn sandbox_data_with_a_batch_webhook_exits_2() {
    let dir = std::env::temp_dir().join(format!("webhook-cli-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data.json");
    std::fs::write(
        &data,
        r#"{"webhooks": [{"name": "W", "url": "/sandbox/echo", "request_type": "GET"}],
            "campaigns": [{"id": 5000, "name": "Monthly Newsletter", "program": "Newsletters",
                           "requestable": false, "flow": [{"call_webhook": "W"}]}]}"#,
    )
    .unwrap();
    let output = Command::new(BIN)
        .args([
            "request",
            "--sandbox",
            "--sandbox-data",
            data.to_str().unwrap(),
        ])
        .args(["--campaign-id", "5000", "--lead", "IDNUM:1002200"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("campaign 5000 \"Monthly Newsletter\" is a batch campaign")
            && stderr.contains("Call Webhook works only in trigger campaigns"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// README's `webhook render` example shows what the command prints.
#[test]
fn the_readme_render_example_is_what_the_command_prints() {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("$ marketo-campaign webhook render")
        .expect("README shows webhook render");
    let block = &readme[start..];
    let block = &block[..block.find("```").unwrap()];
    let mut lines = block.lines();
    let mut command = String::new();
    for line in lines.by_ref() {
        command.push_str(line.trim().trim_end_matches('\\'));
        if !line.ends_with('\\') {
            break;
        }
    }
    let shown: String = lines.map(|l| format!("{l}\n")).collect();
    assert!(
        shown.starts_with("POST https://webinars.example.com/"),
        "{shown}"
    );
    // Split the command as a shell would: words, and single-quoted words.
    let mut args = Vec::new();
    let mut rest = command
        .trim_start_matches("$ marketo-campaign webhook render")
        .trim();
    while !rest.is_empty() {
        let (arg, tail) = match rest.strip_prefix('\'') {
            Some(quoted) => quoted.split_once('\'').unwrap(),
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        args.push(arg.to_owned());
        rest = tail.trim_start();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = Command::new(BIN)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["webhook", "render"])
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), shown);
}
