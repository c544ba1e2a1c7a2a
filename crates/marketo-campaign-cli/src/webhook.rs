//! `marketo-campaign webhook render`: the HTTP request a webhook makes.

use std::path::{Path, PathBuf};

use std::time::Duration;

use marketo_campaign::exit::{INVALID as EXIT_INVALID, OK as EXIT_OK};
use marketo_campaign::webhook::{TokenContext, TokenValue, Webhook};
use marketo_campaign::{Clock, FixedClock, SystemClock};
use marketo_sandbox::Sandbox;

use crate::quote::quoted;

const RENDER_AFTER_HELP: &str = "\
Output: the request line (method and full URL), the headers, an empty line, then the body
exactly as it would be sent, followed by one newline that is not part of it. With --json,
one JSON object: method, url, headers ([name, value] pairs), body, warnings.

How tokens are filled (Marketo's rules, and this tool's choices where Marketo says nothing):
  template  request_token_encoding json: string tokens become JSON strings (quoted, escaped),
            numbers as written; form: values URL-form-encoded (& -> %26, space -> +);
            none: values as they are.
  URL       characters you wrote are sent as written (%26 stays %26, & stays &); token values
            are percent-encoded, so a value never adds a parameter.
  headers   values unquoted; control characters (CR, LF), % and non-ASCII percent-encoded.
  unknown   tokens that name nothing ({{my.Missing}}) are sent as written, as Marketo does;
            lead fields the lead lacks are sent empty; both are warned about on stderr.
  {{lead.X:default=V}} gives V when the field is empty.

Lead fields: --lead FILE reads a JSON object of fields ({\"email\": \"a@b.com\", \"id\": 7});
--lead 'Email Address=a@b.com' (or email=a@b.com) adds one field. Program tokens:
--program-token gives the program's default, --token the request's value, which wins.

Exit status: 0 rendered (warnings go to stderr); 2 bad definition, lead file or argument.

Example:
  marketo-campaign webhook render --webhook register.json --lead 'Email Address=lead@company.com' \\
      --token '{{my.WebinarTitle}}=Migrating off SOAP' --token '{{my.JoinLink}}=https://example.com/join'";

/// Webhook tools.
#[derive(Debug, clap::Args)]
pub(crate) struct WebhookArgs {
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WebhookCommand {
    /// Print the exact HTTP request Marketo's Call Webhook would send for a
    /// lead and the request's tokens (sends nothing).
    #[command(after_help = RENDER_AFTER_HELP)]
    Render(RenderArgs),
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The webhook definition (JSON: url, request_type, template,
    /// request_token_encoding, response_type, headers, response_mappings).
    #[arg(long, value_name = "FILE", value_parser = crate::quote::path_arg)]
    webhook: PathBuf,
    /// The lead: a JSON file of its fields, or one field as NAME=VALUE.
    /// Repeatable; later fields win.
    #[arg(long, value_name = "FILE|NAME=VALUE")]
    lead: Vec<String>,
    /// A program token's value for this request, '{{my.Name}}=value'.
    /// Repeatable; overrides --program-token.
    #[arg(long, value_name = "'{{my.X}}=V'")]
    token: Vec<String>,
    /// A program token's default value (the program's My Tokens),
    /// '{{my.Name}}=value'. Repeatable.
    #[arg(long, value_name = "'{{my.X}}=V'")]
    program_token: Vec<String>,
    /// The campaign's id, for {{campaign.id}}.
    #[arg(long, value_name = "ID")]
    campaign_id: Option<u32>,
    /// The campaign's name, for {{campaign.name}} (with --campaign-id).
    #[arg(
        long,
        value_name = "NAME",
        requires = "campaign_id",
        default_value = ""
    )]
    campaign_name: String,
    /// The program's name, for {{program.name}}.
    #[arg(long, value_name = "NAME")]
    program_name: Option<String>,
    /// The time of {{system.dateTime}}, {{system.date}}, {{system.time}}
    /// (W3C, e.g. 2026-11-25T15:00:00Z; default: now).
    #[arg(long, value_name = "W3C")]
    now: Option<String>,
    /// Print one JSON object instead of the HTTP text.
    #[arg(long)]
    json: bool,
}

/// Runs `webhook …`; returns the exit status.
pub(crate) fn run(args: &WebhookArgs) -> u8 {
    match &args.command {
        WebhookCommand::Render(args) => match render(args) {
            Ok(()) => EXIT_OK,
            Err(message) => {
                eprintln!("error: {message}");
                EXIT_INVALID
            }
        },
    }
}

fn render(args: &RenderArgs) -> Result<(), String> {
    let webhook = Webhook::from_file(&args.webhook).map_err(|e| {
        format!(
            "webhook definition {}: {e}",
            crate::quote::path(&args.webhook)
        )
    })?;
    let clock: Box<dyn Clock> = match &args.now {
        Some(now) => Box::new(FixedClock::parse(now).map_err(|e| e.to_string())?),
        None => Box::new(SystemClock),
    };
    let mut lead = Vec::new();
    for item in &args.lead {
        lead.extend(lead_fields(item)?);
    }
    let mut context = TokenContext::new(clock.as_ref()).lead(lead);
    if let Some(id) = args.campaign_id {
        context = context.campaign(id, args.campaign_name.as_str());
    }
    let defaults = pairs(&args.program_token, "--program-token")?;
    if args.program_name.is_some() || !defaults.is_empty() {
        let name = args.program_name.as_deref().unwrap_or_default();
        context = context.program(name, defaults);
    }
    let context = context.request_tokens(pairs(&args.token, "--token")?);
    let request = webhook.render(&context);
    for warning in &request.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        let json = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        println!("{request}");
    }
    Ok(())
}

/// `--lead FILE` (a JSON object) or `--lead NAME=VALUE`. An existing file wins.
fn lead_fields(item: &str) -> Result<Vec<(String, TokenValue)>, String> {
    if Path::new(item).is_file() || !item.contains('=') {
        let shown = quoted(item);
        let text = std::fs::read_to_string(item).map_err(|e| format!("--lead {shown}: {e}"))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("--lead {shown}: not JSON: {e}"))?;
        let object = json
            .as_object()
            .ok_or_else(|| format!("--lead {shown}: expected a JSON object of lead fields"))?;
        return Ok(object
            .iter()
            .map(|(name, value)| (name.clone(), TokenValue::from_json(value)))
            .collect());
    }
    let (name, value) = split_pair(item);
    if name.trim().is_empty() {
        return Err(format!(
            "--lead {}: expected NAME=VALUE or a JSON file",
            quoted(item)
        ));
    }
    Ok(vec![(name.to_owned(), TokenValue::Text(value.to_owned()))])
}

/// `'{{my.X}}=V'` pairs; the name ends at the first `}}=` when it starts
/// with `{{`, else at the first `=`.
fn pairs(items: &[String], flag: &str) -> Result<Vec<(String, String)>, String> {
    items
        .iter()
        .map(|item| {
            if !item.contains('=') {
                return Err(format!(
                    "{flag} {}: expected '{{{{my.Name}}}}=value'",
                    quoted(item)
                ));
            }
            let (name, value) = split_pair(item);
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

fn split_pair(item: &str) -> (&str, &str) {
    if item.starts_with("{{") {
        if let Some(end) = item.find("}}=") {
            return (&item[..end + 2], &item[end + 3..]);
        }
    }
    item.split_once('=').unwrap_or((item, ""))
}

/// Longest the CLI waits for campaign flows: Marketo's webhook timeout,
/// and a margin.
const FLOWS_WAIT: Duration = Duration::from_secs(35);

/// Prints the webhook calls the sandbox's campaign flows made, once they
/// have finished (at most [`FLOWS_WAIT`]); nothing when no flow ran.
pub(crate) fn print_flows(sandbox: &Sandbox, json: bool) {
    if !sandbox.wait_for_flows(FLOWS_WAIT) {
        eprintln!(
            "warning: campaign flows still running after {} s; their webhook calls are not all shown",
            FLOWS_WAIT.as_secs()
        );
    }
    let calls = sandbox.webhook_calls();
    if calls.is_empty() {
        return;
    }
    if json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            webhook_calls: &'a [marketo_sandbox::WebhookCall],
        }
        match serde_json::to_string(&Line {
            webhook_calls: &calls,
        }) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: cannot write the webhook calls: {e}"),
        }
        return;
    }
    for call in &calls {
        let result = match (call.status, &call.error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => format!("no answer: {error}"),
            (None, None) => "no answer".to_owned(),
        };
        println!(
            "webhook {:?} for lead {} (campaign {}): {} {} -> {result} in {} ms",
            call.webhook, call.lead_id, call.campaign_id, call.method, call.url, call.latency_ms
        );
        for (field, value) in &call.mapped {
            println!("  mapped {field} = {value:?}");
        }
        for warning in &call.warnings {
            println!("  warning: {warning}");
        }
    }
}
