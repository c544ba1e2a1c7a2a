//! `marketo-campaign`: request a Marketo Smart Campaign from the command line,
//! or run the offline sandbox.
//!
//! The workspace member `marketo-campaign-cli`, whose binary is
//! `marketo-campaign`: argument parsing (clap), progress (indicatif) and
//! exit codes over the client library `marketo-campaign`, the embedded
//! `marketo-sandbox` (`--sandbox`, `sandbox`) and `marketo-bridge`
//! (`bridge`), each through its public API only.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bulk;
mod quote;
mod record_sink;
mod webhook;

use quote::quoted;

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};
use marketo_campaign::ajo::{AjoClient, AjoClientBuilder, CampaignMap};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, ChunkReport, ChunkStatus, Delivery, Error,
    Fallback, FixedClock, LeadKey, LeadKeyType, Outcome, PlannedRequest, ProgramToken, RateLimit,
    RestClient, RestClientBuilder, SoapClient, SoapClientBuilder, Source,
};
use marketo_sandbox::{Sandbox, SandboxConfig, SandboxData};

// The exit statuses live in the library (`marketo_campaign::exit`), beside
// the classification they follow.
use marketo_campaign::exit::{
    INVALID as EXIT_INVALID, OK as EXIT_OK, REFUSED as EXIT_REFUSED, UNKNOWN as EXIT_UNKNOWN,
};

const AFTER_HELP: &str = "\
Exit status:
  0  every chunk was accepted and every lead served
  2  bad input or configuration; nothing was sent
  3  the server refused (part of) the request; that part did not run (also: a bad line in
     --leads-file - stopped the run after the chunks before it were all accepted)
  4  the outcome of (part of) the request is unknown; it may have run: do not resend blindly
  5  the server could not be reached; nothing was sent

Environment:
  MARKETO_SOAP_ENDPOINT        e.g. https://123-ABC-456.mktoapi.com/soap/mktows/2_9
  MARKETO_SOAP_USER_ID         the SOAP user id (Admin > Web Services)
  MARKETO_SOAP_ENCRYPTION_KEY  the SOAP encryption key (never printed)
  MARKETO_SOAP_TIMEZONE        zone of requestTimestamp (default America/Los_Angeles)
  MARKETO_REST_ENDPOINT        e.g. https://123-ABC-456.mktorest.com
  MARKETO_REST_IDENTITY        identity base URL (default: MARKETO_REST_ENDPOINT/identity)
  MARKETO_CLIENT_ID            the REST client id (Admin > LaunchPoint)
  MARKETO_CLIENT_SECRET        the REST client secret (never printed)
  For --backend ajo (each AJO_X may be given as ADOBE_X; AJO_X wins):
  AJO_CLIENT_ID                the OAuth server-to-server client id (also sent as x-api-key)
  AJO_CLIENT_SECRET            its client secret (never printed)
  AJO_ORG_ID                   the IMS organization, x-gw-ims-org-id (...@AdobeOrg)
  AJO_SANDBOX_NAME             the Experience Platform sandbox, x-sandbox-name (e.g. prod)
  AJO_ENDPOINT                 API gateway (default https://platform.adobe.io)
  AJO_IMS_TOKEN_URL            IMS token URL (default https://ims-na1.adobelogin.com/ims/token/v3)
  AJO_SCOPES                   OAuth scopes (default openid,AdobeID,read_organizations,
                               additional_info.projectedProductContext,session)
  AJO_CAMPAIGN_MAP             a campaign map file (as --campaign-map, which wins)

Backends:
  soap  requestCampaign over SOAP.
  rest  trigger.json over REST; campaign names and non-IDNUM lead keys are looked up first,
        keys that match no lead are reported (exit 3), never dropped silently.
  auto  SOAP when MARKETO_SOAP_* is set, else REST; with both set, falls back to REST only
        when SOAP provably did not run the campaign (not sent, HTTP 404/410, 'removed' faults).
  ajo   Adobe Journey Optimizer: unitary executions of an API-triggered campaign, 20
        recipients a call. The campaign is --ajo-campaign-id, or the Marketo campaign mapped
        by --campaign-map; tokens become each recipient's context ({{my.X}} -> context.X);
        EMAIL keys are sent in the 'email' identity namespace, other key types are refused.";

/// Request Marketo Smart Campaigns over SOAP, or run an offline Marketo sandbox.
#[derive(Debug, Parser)]
#[command(name = "marketo-campaign", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Smart Campaign for some leads (SOAP requestCampaign).
    #[command(after_help = AFTER_HELP)]
    Request(RequestArgs),
    /// Run the offline sandbox (SOAP and REST on loopback) until interrupted.
    ///
    /// Prints one JSON line with the endpoints and the credentials it accepts,
    /// its AJO campaigns (each with the Marketo campaign it stands for) and
    /// the path of the campaign map it writes for them, then serves. The
    /// campaign runs are journaled at GET /sandbox/journal.
    Sandbox(SandboxArgs),
    /// Serve Marketo's SOAP API to legacy integrations, over REST.
    ///
    /// Accepts the SOAP users of MARKETO_SOAP_USER_ID / MARKETO_SOAP_ENCRYPTION_KEY
    /// (or --users-file), calls Marketo with MARKETO_REST_ENDPOINT /
    /// MARKETO_CLIENT_ID / MARKETO_CLIENT_SECRET. Prints one JSON line with its
    /// endpoint, then serves; one log line per call on stderr.
    Bridge(BridgeArgs),
    /// Marketo webhooks: `webhook render` prints the HTTP request a Call
    /// Webhook step would send.
    Webhook(webhook::WebhookArgs),
}

#[derive(Debug, clap::Args)]
struct BridgeArgs {
    /// Address to listen on: a loopback address unless --allow-non-loopback.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The bridge's public base URL, for the WSDL's soap:address (default:
    /// from the request's Host header).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Let --listen name a non-loopback address (serve TLS with --tls-cert
    /// and --tls-key, or put TLS in front of it).
    #[arg(long)]
    allow_non_loopback: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key", value_parser = crate::quote::path_arg)]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, unencrypted PKCS#8 or RSA);
    /// needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert", value_parser = crate::quote::path_arg)]
    tls_key: Option<PathBuf>,
    /// Answer success without calling Marketo; log the calls it would make.
    #[arg(long)]
    dry_run: bool,
    /// Start the embedded sandbox and forward to its REST side (its SOAP
    /// credentials are the ones accepted).
    #[arg(long)]
    sandbox: bool,
    /// The embedded sandbox's data (campaigns, leads, webhooks; see
    /// README): campaign flows run for calls through the bridge too.
    #[arg(long, value_name = "FILE", requires = "sandbox", value_parser = crate::quote::path_arg)]
    sandbox_data: Option<PathBuf>,
    /// File of SOAP users to accept: one `USER_ID ENCRYPTION_KEY` a line.
    #[arg(long, value_name = "PATH", value_parser = crate::quote::path_arg)]
    users_file: Option<PathBuf>,
    /// Run the campaign for the leads found even when some keys name no lead
    /// (default: fault 20103 and nothing runs, as SOAP).
    #[arg(long)]
    run_matched_leads: bool,
    /// Where the SOAP calls go: Marketo's REST API, or Adobe Journey
    /// Optimizer (AJO_* / ADOBE_* variables, see `request --help`; Marketo
    /// targets become AJO campaigns through --campaign-map). With ajo,
    /// MARKETO_REST_* (when set) still looks every lead key up first.
    #[arg(long, value_enum, default_value_t = BridgeBackend::Rest)]
    backend: BridgeBackend,
    /// With --backend ajo: the JSON file mapping Marketo campaigns to AJO
    /// campaign ids (default: AJO_CAMPAIGN_MAP; with --sandbox, the
    /// sandbox's own map).
    #[arg(long, value_name = "FILE", value_parser = crate::quote::path_arg)]
    campaign_map: Option<PathBuf>,
    /// Longest a call may wait for a place under Marketo's REST limits (100
    /// calls / 20 s, 10 at once, shared by every caller), and longest it may
    /// spend retrying 606 / 615; past it the caller gets fault 20023 / 20024
    /// and nothing is sent.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    wait_budget: u64,
    /// Resend protection (off by default): a requestCampaign or
    /// scheduleCampaign equal to one answered within SECS (same SOAP user,
    /// campaign, leads, tokens, source) gets that answer instead of running
    /// again; one still in flight is waited for. Turn it on when legacy
    /// clients resend calls that timed out on their side; it also
    /// suppresses a deliberate repeat within the window.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    dedupe_window: u64,
    #[command(flatten)]
    pacing: PacingArgs,
}

/// Pacing of the calls to Marketo, shared by `request` and `bridge`.
#[derive(Debug, clap::Args)]
struct PacingArgs {
    /// Client-side pacing: calls per window and, optionally, calls in flight.
    /// Marketo allows 100 calls per 20 s and 10 at once per API; raise it only
    /// if your subscription does. With --limiter, every process sharing the
    /// Redis must give the same.
    #[arg(long, value_name = "CALLS/SECS[/INFLIGHT]", default_value = "100/20/10", value_parser = parse_rate)]
    rate_limit: RateLimit,
    /// Client-side daily quota: past N calls in Marketo's quota day, calls
    /// are not sent (exit 5, saying when the quota resets; the bridge
    /// answers 20015) instead of burning 607s. Counted by this process, or
    /// by every process sharing --limiter. Default: none.
    #[arg(long, value_name = "N")]
    daily_quota: Option<u32>,
    /// When the quota day starts: fixed-cst (midnight UTC-6 all year, as
    /// Marketo documents "12:00 AM CST") or central (midnight in
    /// America/Chicago, with daylight saving).
    #[arg(long, value_enum, default_value_t = QuotaDayArg::FixedCst, requires = "daily_quota")]
    quota_day: QuotaDayArg,
    /// Share Marketo's limits (the rolling window, the calls in flight, the
    /// daily quota) with every process pointed at the same Redis and
    /// instance: redis://HOST:PORT/DB. Without it, this process paces
    /// itself.
    #[arg(long, value_name = "URL", env = "MARKETO_LIMITER_URL")]
    limiter: Option<String>,
    /// When the limiter's Redis cannot answer: refuse (nothing is sent,
    /// exit 5; the bridge answers 20023) or local (pace this process alone:
    /// the instance's limits may then be exceeded).
    #[arg(long, value_enum, default_value_t = LimiterFallback::Refuse, requires = "limiter")]
    limiter_fallback: LimiterFallback,
}

impl PacingArgs {
    /// `--rate-limit`, with `--daily-quota` when given.
    fn limit(&self) -> RateLimit {
        match self.daily_quota {
            None => self.rate_limit,
            Some(quota) => self
                .rate_limit
                .daily_quota(quota)
                .quota_day(self.quota_day.into()),
        }
    }

    /// The shared limiter `--limiter` names, for the instance at `endpoint`.
    fn shared(&self, endpoint: &str) -> Result<Option<marketo_campaign::SharedLimiter>, Error> {
        self.limiter
            .as_deref()
            .map(|url| {
                marketo_campaign::SharedLimiter::new(url, endpoint).map(|shared| {
                    shared.fallback_local(self.limiter_fallback == LimiterFallback::Local)
                })
            })
            .transpose()
    }
}

#[derive(Debug, clap::Args)]
struct SandboxArgs {
    /// Address to listen on: a loopback address (127.0.0.0/8, ::1) unless
    /// --allow-non-loopback is given.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Let --listen name a non-loopback address (e.g. 0.0.0.0:8080). The
    /// administration API (/sandbox/...: faults, journal of lead ids) has no
    /// authentication: anyone who reaches the port can read and steer it.
    #[arg(long)]
    allow_non_loopback: bool,
    /// JSON file with campaigns, leads and credentials (see README).
    #[arg(long, value_parser = crate::quote::path_arg)]
    config: Option<PathBuf>,
    /// Retire the SOAP endpoint: answer every SOAP call with this HTTP status (404 or 410).
    #[arg(long, value_name = "STATUS", value_parser = clap::value_parser!(u16).range(400..=599))]
    retire_soap: Option<u16>,
    /// Lifetime of the REST access tokens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    token_lifetime: u64,
    /// Calls allowed per window and at once, for each API (606 / 20023 and
    /// 615 / 20024 past them).
    #[arg(long, value_name = "CALLS/SECS[/CONCURRENT]", default_value = "100/20/10", value_parser = parse_rate)]
    rate_limit: RateLimit,
    /// Add N generated leads (ids 1..=N, emails leadN@example.com), for bulk runs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    generate_leads: u32,
    /// Where to write the campaign map of the sandbox's AJO campaigns (for
    /// AJO_CAMPAIGN_MAP or --campaign-map with --backend ajo). Default: a
    /// file in the temporary directory named after its content
    /// (marketo-sandbox-campaign-map-HASH.json), shared by sandboxes of
    /// the same data. The start-up line gives its path as
    /// "ajo_campaign_map".
    #[arg(long, value_name = "FILE", value_parser = crate::quote::path_arg)]
    campaign_map_out: Option<PathBuf>,
}

/// Where the bridge sends the SOAP calls it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BridgeBackend {
    /// Marketo's REST API.
    Rest,
    /// Adobe Journey Optimizer.
    Ajo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// SOAP when configured, else REST; falls back to REST when SOAP is gone.
    Auto,
    /// Marketo's SOAP API (requestCampaign).
    Soap,
    /// Marketo's REST API (trigger.json, with look-ups).
    Rest,
    /// Adobe Journey Optimizer (unitary executions of an API-triggered campaign).
    Ajo,
}

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("target").required(true).args(["campaign_id", "campaign_name", "ajo_campaign_id"])))]
#[command(group(ArgGroup::new("leads_input").required(true).args(["lead", "leads_file"]).multiple(true)))]
struct RequestArgs {
    /// The campaign's id. With --token, only REST can send it (SOAP's
    /// requestCampaign takes an id alone): --backend auto sends it over REST,
    /// --backend soap refuses it (exit 2, nothing sent).
    #[arg(long, value_name = "ID", conflicts_with_all = ["program_name"])]
    campaign_id: Option<u32>,
    /// The campaign's name (with --program-name).
    #[arg(long, value_name = "NAME", requires = "program_name")]
    campaign_name: Option<String>,
    /// The name of the program that holds the campaign.
    #[arg(long, value_name = "NAME", requires = "campaign_name")]
    program_name: Option<String>,
    /// An Adobe Journey Optimizer campaign, by its id (with --backend ajo;
    /// other backends refuse it, exit 2, nothing sent).
    #[arg(long, value_name = "AJO_ID")]
    ajo_campaign_id: Option<String>,
    /// With --backend ajo: a JSON file mapping Marketo campaigns (by id, or
    /// by campaign + program name) to AJO campaign ids:
    /// {"campaigns":[{"marketo_id":1234,"ajo_campaign_id":"..."},
    /// {"campaign":"C","program":"P","ajo_campaign_id":"..."}]}.
    /// Default: AJO_CAMPAIGN_MAP; with --sandbox, the sandbox's own map.
    #[arg(long, value_name = "FILE", value_parser = crate::quote::path_arg)]
    campaign_map: Option<PathBuf>,
    /// With --backend ajo: lead keys of TYPE are sent in the identity
    /// namespace NAMESPACE (e.g. IDNUM=marketoId). Repeatable. Default:
    /// EMAIL=email only; a key of an unmapped type exits 2, nothing sent.
    #[arg(long, value_name = "TYPE=NAMESPACE", value_parser = parse_namespace)]
    namespace: Vec<(LeadKeyType, String)>,
    /// A program token for this run, '{{my.Name}}=value'. Repeatable. With
    /// --campaign-name, or with --campaign-id over REST.
    #[arg(long, value_name = "'{{my.X}}=V'")]
    token: Vec<String>,
    /// A lead, TYPE:VALUE (IDNUM, COOKIE, EMAIL, LEADOWNEREMAIL, SFDCACCOUNTID,
    /// SFDCCONTACTID, SFDCLEADID, SFDCLEADOWNERID, SFDCOPPTYID). Repeatable.
    #[arg(long, value_name = "TYPE:VALUE")]
    lead: Vec<String>,
    /// A file of leads ('-' for stdin), streamed and sent in chunks of 100.
    ///
    /// Lines are TYPE:VALUE; blank lines and lines starting with '#' are
    /// skipped; a CSV whose header names a 'type' and a 'value' column (or
    /// one column named after a key type, e.g. 'email') is read too. A file
    /// is checked whole before anything is sent: a bad line or an empty
    /// file sends nothing (exit 2). From stdin, the run stops at a bad
    /// line: exit 2 only if nothing was sent; if chunks were sent before
    /// it, the error says how many, and the run exits as they did (4 if any
    /// may have run, else 3 or 5; 3 if all were accepted: the leads from
    /// the bad line on did not run).
    ///
    /// With --json, stdout is the run's write-ahead record: a "sending"
    /// line for each chunk (its index, first lead, size, the digest of its
    /// leads and of the request: campaign, tokens, source) is written and
    /// flushed before the chunk is sent (and synced to the disk, when
    /// stdout is a regular file: it then survives a power cut; a pipe or a
    /// terminal cannot be synced, there it survives a crash of this process
    /// only), its outcome line when it finishes,
    /// and a summary line at the end. If a line cannot be written, the run
    /// stops and no chunk is sent after it (exit 2 if nothing was sent,
    /// else 4); the error names the line and what had been sent. Keep this
    /// output: --resume reads it. Failed and not-attempted chunks are named
    /// on stderr.
    #[arg(long, value_name = "PATH|-", value_parser = crate::quote::path_arg)]
    leads_file: Option<PathBuf>,
    /// Resume from the record (--json output) of an earlier run of the same
    /// leads file and the same request.
    ///
    /// Sent again: the chunks the record shows refused, not sent or not
    /// attempted (fix them in the leads file first). Never resent: chunks
    /// accepted, and chunks whose outcome is unknown: failed with delivery
    /// 'unknown', or with a "sending" line and no outcome (the run was
    /// killed or crashed while they were in flight): they may have run.
    /// The resumed run's output is again a whole record (the chunks it
    /// skips are copied in, "carried_over":true), so resume from the newest
    /// output. Refused before anything is sent (exit 2): a record of
    /// another request (another campaign, program, tokens or source: its
    /// accepted chunks never got this one), a leads file changed in any
    /// chunk the record says was sent (each chunk's digest is compared), a
    /// record from an older version without digests, stdin. A run that
    /// leaves any chunk unknown, resumed or not, exits 4: those leads may
    /// or may not have been served, and no resume sends them again.
    #[arg(long, value_name = "FILE", requires = "leads_file", value_parser = crate::quote::path_arg)]
    resume: Option<PathBuf>,
    /// Requests in flight at once in a bulk run (the rate limit still applies).
    #[arg(long, default_value_t = 10, value_name = "N")]
    workers: usize,
    #[command(flatten)]
    pacing: PacingArgs,
    /// The request's source.
    #[arg(long, default_value = "MKTOWS", value_name = "MKTOWS|SALES")]
    source: String,
    /// Which API to use.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Print the HTTP requests that would be sent, and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Pin SOAP's requestTimestamp (W3C, e.g. 2010-04-09T14:04:54-07:00) to
    /// reproduce a signature. It applies to SOAP requests only (--backend soap,
    /// or auto's SOAP side); REST requests carry no timestamp, so it is refused
    /// with --backend rest, and with auto when SOAP is not configured. Always
    /// checked first: a malformed value exits 2, whatever the backend.
    #[arg(long, value_name = "W3C", value_parser = parse_timestamp)]
    timestamp: Option<FixedClock>,
    /// Print JSON: with --dry-run one object per HTTP request, else the outcome.
    #[arg(long)]
    json: bool,
    /// Start the embedded sandbox and send to it (ignores MARKETO_*, AJO_* and ADOBE_* variables).
    #[arg(long)]
    sandbox: bool,
    /// The embedded sandbox's data (campaigns, leads, webhooks; see README).
    /// Campaign flows' webhook calls are printed after the outcome (with
    /// --json, one line {"webhook_calls": [...]}), once they finish.
    #[arg(long, value_name = "FILE", requires = "sandbox", value_parser = crate::quote::path_arg)]
    sandbox_data: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Exit 2 (0 for --help and --version), the values it quotes cut.
        Err(e) => quote::clap_error(e).exit(),
    };
    match cli.command {
        Command::Request(args) => ExitCode::from(request(&args)),
        Command::Sandbox(args) => ExitCode::from(sandbox(&args)),
        Command::Webhook(args) => ExitCode::from(webhook::run(&args)),
        Command::Bridge(args) => ExitCode::from(bridge(&args)),
    }
}

/// Writes `info` and above to stderr, one line each (the bridge's call log).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

fn bridge(args: &BridgeArgs) -> u8 {
    use marketo_bridge::{authenticator_from_file, Bridge};
    use marketo_campaign::soap::Authenticator;

    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let sandbox = match embedded_sandbox(args.sandbox, args.sandbox_data.as_deref()) {
        Ok(sandbox) => sandbox,
        Err(e) => return fail(&e),
    };
    let auth = match (&args.users_file, &sandbox) {
        (Some(path), _) => authenticator_from_file(path),
        (None, Some(sandbox)) => Ok(Authenticator::new(
            sandbox.soap_user_id(),
            sandbox.soap_encryption_key(),
        )),
        (None, None) => Authenticator::from_env(),
    };
    // The wait budget bounds both the wait for a place in the shared
    // limiter (past it: not sent, 20023 / 20024) and retries of 606 / 615.
    let budget = std::time::Duration::from_secs(args.wait_budget);
    let retry = marketo_campaign::RetryPolicy::default().budget(budget);
    let limit = Some(args.pacing.limit().max_wait(budget));
    let shared = match args
        .pacing
        .shared(&instance(sandbox.as_ref(), "MARKETO_REST_ENDPOINT"))
    {
        Ok(shared) => shared,
        Err(e) => return fail(&e),
    };
    let with_shared = |builder: RestClientBuilder| match &shared {
        Some(shared) => builder.shared_limiter(shared.clone()),
        None => builder,
    };
    let rest = match &sandbox {
        Some(sandbox) => with_shared(
            sandbox
                .rest_client_builder()
                .retry(retry.clone())
                .rate_limit(limit),
        )
        .build(),
        None => RestClientBuilder::from_env()
            .and_then(|b| with_shared(b.retry(retry.clone()).rate_limit(limit)).build()),
    };
    let auth = match auth {
        Ok(auth) => auth,
        Err(e) => return fail(&e),
    };
    match args.backend {
        BridgeBackend::Rest => match rest {
            Ok(rest) => serve_bridge(Bridge::rest(rest, auth), args, sandbox.as_ref()),
            Err(e) => fail(&e),
        },
        BridgeBackend::Ajo => {
            let ajo = match sandbox.as_ref() {
                Some(sandbox) => Ok(sandbox.ajo_client_builder()),
                None => AjoClientBuilder::from_env(),
            }
            .and_then(|mut builder| {
                if let Some(path) = &args.campaign_map {
                    builder = builder.campaign_map(CampaignMap::from_file(path)?);
                }
                builder.retry(retry).rate_limit(limit).build()
            });
            let ajo = match ajo {
                Ok(ajo) => ajo,
                Err(e) => return fail(&e),
            };
            let bridge = Bridge::new(ajo, auth);
            // Marketo's REST API, when configured, still checks every lead
            // key first (SOAP's all-or-nothing rule) and serves
            // scheduleCampaign and getCampaignsForSource.
            let bridge = match (
                rest,
                sandbox.is_some() || std::env::var_os("MARKETO_REST_ENDPOINT").is_some(),
            ) {
                (Ok(rest), _) => bridge.lookups(rest),
                (Err(e), true) => return fail(&e),
                (Err(_), false) => {
                    log::warn!("bridge: no MARKETO_REST_* configuration: lead keys are not looked up first (Journey Optimizer reports no unknown profiles), and scheduleCampaign / getCampaignsForSource answer 20012");
                    bridge
                }
            };
            serve_bridge(bridge, args, sandbox.as_ref())
        }
    }
}

/// Serves `bridge` as `args` say, prints the start-up line, and runs until
/// SIGTERM / Ctrl-C.
fn serve_bridge<R: CampaignRequester + Send + Sync + 'static>(
    bridge: marketo_bridge::Bridge<R>,
    args: &BridgeArgs,
    sandbox: Option<&Sandbox>,
) -> u8 {
    let mut bridge = bridge
        .dry_run(args.dry_run)
        .run_matched_leads(args.run_matched_leads);
    let window = std::time::Duration::from_secs(args.dedupe_window);
    // With a shared limiter, the resend protection's claims live in the
    // same Redis, so that they hold across bridges.
    bridge = match &args.pacing.limiter {
        Some(url) if !window.is_zero() => match bridge.dedupe_window_in_redis(window, url) {
            Ok(bridge) => bridge,
            Err(e) => return fail(&e),
        },
        _ => bridge.dedupe_window(window),
    };
    if let Some(url) = &args.public_url {
        bridge = bridge.public_url(url);
    }
    let served = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf| {
                std::fs::read(path)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", quote::path(path))))
            };
            match (read(cert), read(key)) {
                (Ok(cert), Ok(key)) => {
                    bridge.serve_tls(args.listen, args.allow_non_loopback, &cert, &key)
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        _ => bridge.serve(args.listen, args.allow_non_loopback),
    };
    let server = match served {
        Ok(server) => server,
        Err(e) => return fail(&e),
    };
    let endpoint = match &args.public_url {
        Some(url) if url.contains("/soap/mktows/") => url.clone(),
        Some(url) => format!("{}/soap/mktows/2_9", url.trim_end_matches('/')),
        None => server.endpoint(),
    };
    let scheme = if server.is_tls() { "https" } else { "http" };
    let mut line = serde_json::json!({
        "bridge_endpoint": endpoint,
        "wsdl": format!("{endpoint}?WSDL"),
        "health": format!("{scheme}://{}/healthz", server.addr()),
        "metrics": format!("{scheme}://{}/metrics", server.addr()),
        "dry_run": args.dry_run,
        "backend": match args.backend {
            BridgeBackend::Rest => "rest",
            BridgeBackend::Ajo => "ajo",
        },
    });
    if let (Some(sandbox), Some(map)) = (sandbox, line.as_object_mut()) {
        // The sandbox's own demo credentials, as `sandbox` prints them.
        map.insert("soap_user_id".into(), sandbox.soap_user_id().into());
        map.insert(
            "soap_encryption_key".into(),
            sandbox.soap_encryption_key().into(),
        );
        map.insert(
            "sandbox_rest_endpoint".into(),
            sandbox.rest_endpoint().into(),
        );
        map.insert(
            "journal".into(),
            format!("{}/sandbox/journal", sandbox.base_url()).into(),
        );
    }
    println!("{line}");
    let _ = std::io::stdout().flush();
    // SIGTERM / Ctrl-C: stop taking calls, finish the calls in hand, exit 0.
    let (stop, stopped) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop.send(());
    }) {
        eprintln!("warning: cannot handle SIGTERM ({e}); serving until killed");
        server.wait();
        return EXIT_OK;
    }
    let _ = stopped.recv();
    log::info!("bridge: shutting down; finishing the calls in hand");
    server.shutdown();
    log::info!("bridge: stopped");
    EXIT_OK
}

fn sandbox(args: &SandboxArgs) -> u8 {
    let data = match args.config.as_ref().map(SandboxData::from_file).transpose() {
        Ok(data) => data.unwrap_or_default(),
        Err(e) => return fail(&e),
    };
    let data = if args.generate_leads > 0 {
        data.with_generated_leads(1, args.generate_leads)
    } else {
        data
    };
    let config = SandboxConfig::new()
        .listen(args.listen)
        .danger_allow_non_loopback(args.allow_non_loopback)
        .data(data)
        .soap_retired(args.retire_soap)
        .token_lifetime(std::time::Duration::from_secs(args.token_lifetime))
        .rate_limit(args.rate_limit.calls(), args.rate_limit.window())
        .max_concurrent(args.rate_limit.in_flight());
    let sandbox = match Sandbox::start_with(config) {
        Ok(sandbox) => sandbox,
        Err(e) => return fail(&e),
    };
    // The map of its AJO campaigns, so that `request --backend ajo` by a
    // Marketo campaign's id or name runs against this sandbox.
    let json = sandbox.ajo_campaign_map().to_json();
    let map = args
        .campaign_map_out
        .clone()
        .unwrap_or_else(|| default_campaign_map_path(&json));
    if let Err(e) = write_whole(&map, &json) {
        return fail(&Error::Config(format!(
            "cannot write the campaign map {}: {e}",
            quote::path(&map)
        )));
    }
    let mut line: serde_json::Value =
        serde_json::from_str(&sandbox.startup_line()).unwrap_or_default();
    if let Some(fields) = line.as_object_mut() {
        fields.insert("ajo_campaign_map".into(), map.display().to_string().into());
    }
    println!("{line}");
    let _ = std::io::stdout().flush();
    sandbox.wait();
    EXIT_OK
}

/// Where `sandbox` writes its campaign map by default: in the temporary
/// directory, named after its content, so that sandboxes of the same data
/// share one file (none piles up, however many are started and killed).
fn default_campaign_map_path(json: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    std::env::temp_dir().join(format!(
        "marketo-sandbox-campaign-map-{:016x}.json",
        hasher.finish()
    ))
}

/// Writes `text` to `path` whole: a reader sees the old file or the new
/// one, never a part (written beside it, then renamed over it).
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".{}.partial", std::process::id()));
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
}

fn fail(err: &Error) -> u8 {
    eprintln!("error: {err}");
    exit_code(err)
}

fn exit_code(err: &Error) -> u8 {
    err.exit_code()
}

fn build_target(args: &RequestArgs) -> Result<(CampaignTarget, Source), Error> {
    let tokens = args
        .token
        .iter()
        .map(|t| t.parse::<ProgramToken>())
        .collect::<Result<Vec<_>, _>>()?;
    let target = match (
        &args.campaign_id,
        &args.campaign_name,
        &args.program_name,
        &args.ajo_campaign_id,
    ) {
        (Some(id), None, None, None) => CampaignTarget::id_with_tokens(*id, tokens),
        (None, Some(campaign), Some(program), None) => {
            CampaignTarget::named(campaign.as_str(), program.as_str(), tokens)
        }
        (None, None, None, Some(ajo)) => CampaignTarget::ajo(ajo.as_str(), tokens),
        _ => {
            return Err(Error::InvalidInput {
                field: "campaign".into(),
                reason: "pass --campaign-id alone, --campaign-name with --program-name, or --ajo-campaign-id".into(),
            })
        }
    };
    Ok((target, args.source.parse()?))
}

fn build_request(args: &RequestArgs) -> Result<CampaignRequest, Error> {
    let (target, source) = build_target(args)?;
    let leads = args
        .lead
        .iter()
        .map(|l| l.parse::<LeadKey>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CampaignRequest::new(target, leads)?.with_source(source))
}

/// The backend the command line chose.
enum Client {
    Soap(SoapClient),
    Rest(RestClient),
    Auto(Box<Fallback<SoapClient, RestClient>>),
    Ajo(AjoClient),
}

impl Client {
    fn requester(&self) -> &dyn CampaignRequester {
        match self {
            Client::Soap(c) => c,
            Client::Rest(c) => c,
            Client::Auto(c) => c.as_ref(),
            Client::Ajo(c) => c,
        }
    }

    /// What a dry run shows: the requests of the backend tried first, or,
    /// when it cannot express the request (SOAP and an id with tokens),
    /// those of the backend `Fallback` hands it to.
    fn plan(&self, request: &CampaignRequest) -> Result<Vec<PlannedRequest>, Error> {
        match self {
            Client::Soap(c) => c.plan(request),
            Client::Rest(c) => c.plan(request),
            Client::Ajo(c) => c.plan(request),
            Client::Auto(c) => match c.primary().plan(request) {
                Err(e) if e.delivery() == Delivery::NotSent => c.secondary().plan(request),
                plans => plans,
            },
        }
    }
}

fn soap_builder(args: &RequestArgs, sandbox: Option<&Sandbox>) -> Result<SoapClientBuilder, Error> {
    let mut builder = match sandbox {
        Some(sandbox) => sandbox.soap_client_builder(),
        None => SoapClientBuilder::from_env()?,
    };
    if let Some(clock) = args.timestamp {
        builder = builder.clock(clock);
    }
    builder = builder.rate_limit(Some(args.pacing.limit()));
    if let Some(shared) = args
        .pacing
        .shared(&instance(sandbox, "MARKETO_SOAP_ENDPOINT"))?
    {
        builder = builder.shared_limiter(shared);
    }
    Ok(builder)
}

fn rest_builder(args: &RequestArgs, sandbox: Option<&Sandbox>) -> Result<RestClientBuilder, Error> {
    let mut builder = match sandbox {
        Some(sandbox) => sandbox.rest_client_builder(),
        None => RestClientBuilder::from_env()?,
    }
    .rate_limit(Some(args.pacing.limit()));
    if let Some(shared) = args
        .pacing
        .shared(&instance(sandbox, "MARKETO_REST_ENDPOINT"))?
    {
        builder = builder.shared_limiter(shared);
    }
    Ok(builder)
}

fn ajo_builder(args: &RequestArgs, sandbox: Option<&Sandbox>) -> Result<AjoClientBuilder, Error> {
    let mut builder = match sandbox {
        Some(sandbox) => sandbox.ajo_client_builder(),
        None => AjoClientBuilder::from_env()?,
    };
    if let Some(path) = &args.campaign_map {
        builder = builder.campaign_map(CampaignMap::from_file(path)?);
    }
    for (key_type, namespace) in &args.namespace {
        builder = builder.namespace(*key_type, namespace.as_str());
    }
    builder = builder.rate_limit(Some(args.pacing.limit()));
    if let Some(shared) = args.pacing.shared(&instance(sandbox, "AJO_ENDPOINT"))? {
        builder = builder.shared_limiter(shared);
    }
    Ok(builder)
}

/// `--limiter-fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LimiterFallback {
    /// Send nothing when Redis cannot answer.
    Refuse,
    /// Pace this process alone.
    Local,
}

/// The instance a client talks to, for the shared limiter's key: the
/// sandbox's, else the environment's endpoint.
fn instance(sandbox: Option<&Sandbox>, variable: &str) -> String {
    match sandbox {
        Some(sandbox) => sandbox.rest_endpoint(),
        None => std::env::var(variable).unwrap_or_default(),
    }
}

/// `--quota-day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum QuotaDayArg {
    /// Midnight UTC-6 all year.
    FixedCst,
    /// Midnight in America/Chicago (CST or CDT).
    Central,
}

impl From<QuotaDayArg> for marketo_campaign::QuotaDay {
    fn from(day: QuotaDayArg) -> Self {
        match day {
            QuotaDayArg::FixedCst => marketo_campaign::QuotaDay::FixedCst,
            QuotaDayArg::Central => marketo_campaign::QuotaDay::Central,
        }
    }
}

/// `--namespace TYPE=NAMESPACE`, e.g. `IDNUM=marketoId`.
fn parse_namespace(s: &str) -> Result<(LeadKeyType, String), String> {
    let (key_type, namespace) = s.split_once('=').ok_or_else(|| {
        format!(
            "{}: expected TYPE=NAMESPACE, e.g. IDNUM=marketoId",
            quoted(s)
        )
    })?;
    let key_type = key_type
        .trim()
        .parse::<LeadKeyType>()
        .map_err(|e| e.to_string())?;
    let namespace = namespace.trim();
    if namespace.is_empty() {
        return Err(format!("{}: the namespace is empty", quoted(s)));
    }
    Ok((key_type, namespace.to_owned()))
}

/// `--timestamp`: a W3C / RFC 3339 timestamp, checked by clap before
/// anything else runs (a malformed one exits 2, whatever the backend).
fn parse_timestamp(s: &str) -> Result<FixedClock, String> {
    FixedClock::parse(s).map_err(|e| match e {
        Error::InvalidInput { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// `--timestamp` with a client that sends no SOAP request: refused, as it
/// would be silently ignored.
fn timestamp_without_soap(why: &str) -> Error {
    Error::InvalidInput {
        field: "--timestamp".into(),
        reason: format!("it pins SOAP's requestTimestamp, and {why}"),
    }
}

/// `CALLS/SECS[/INFLIGHT]`, e.g. `100/20` or `100/20/10`.
fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let number = |p: &str| p.trim().parse::<u64>().ok().filter(|n| *n > 0);
    match parts.as_slice() {
        [calls, secs] | [calls, secs, _] => {
            let calls = number(calls).and_then(|n| u32::try_from(n).ok());
            let secs = number(secs);
            let in_flight = match parts.get(2) {
                Some(p) => number(p).and_then(|n| usize::try_from(n).ok()),
                None => Some(10),
            };
            match (calls, secs, in_flight) {
                (Some(calls), Some(secs), Some(in_flight)) => Ok(RateLimit::new(
                    calls,
                    std::time::Duration::from_secs(secs),
                    in_flight,
                )),
                _ => Err(format!(
                    "{}: expected positive numbers, e.g. 100/20/10",
                    quoted(s)
                )),
            }
        }
        _ => Err(format!(
            "{}: expected CALLS/SECS[/INFLIGHT], e.g. 100/20/10",
            quoted(s)
        )),
    }
}

fn client(args: &RequestArgs, sandbox: Option<&Sandbox>) -> Result<Client, Error> {
    if args.backend != Backend::Ajo {
        let ajo_only = [
            ("--campaign-map", args.campaign_map.is_some()),
            ("--namespace", !args.namespace.is_empty()),
        ];
        if let Some((flag, _)) = ajo_only.iter().find(|(_, given)| *given) {
            return Err(Error::InvalidInput {
                field: (*flag).into(),
                reason: "it applies to --backend ajo only".into(),
            });
        }
    }
    Ok(match args.backend {
        Backend::Soap => Client::Soap(soap_builder(args, sandbox)?.build()?),
        Backend::Rest if args.timestamp.is_some() => {
            return Err(timestamp_without_soap(
                "--backend rest sends no SOAP request",
            ))
        }
        Backend::Rest => Client::Rest(rest_builder(args, sandbox)?.build()?),
        Backend::Ajo if args.timestamp.is_some() => {
            return Err(timestamp_without_soap(
                "--backend ajo sends no SOAP request",
            ))
        }
        Backend::Ajo => Client::Ajo(ajo_builder(args, sandbox)?.build()?),
        Backend::Auto => match (soap_builder(args, sandbox), rest_builder(args, sandbox)) {
            (Ok(soap), Ok(rest)) => {
                Client::Auto(Box::new(Fallback::new(soap.build()?, rest.build()?)))
            }
            (Ok(soap), Err(_)) => Client::Soap(soap.build()?),
            (Err(soap), Ok(_)) if args.timestamp.is_some() => {
                return Err(timestamp_without_soap(&format!(
                    "SOAP is not configured: {soap}"
                )))
            }
            (Err(_), Ok(rest)) => Client::Rest(rest.build()?),
            (Err(soap), Err(rest)) => {
                return Err(Error::Config(format!(
                    "configure SOAP (MARKETO_SOAP_*) or REST (MARKETO_REST_*, MARKETO_CLIENT_*): {soap}; {rest}"
                )))
            }
        },
    })
}

fn request(args: &RequestArgs) -> u8 {
    if args.leads_file.is_some() {
        return with_client(args, |client, _| bulk::run(args, client));
    }
    let request = match build_request(args) {
        Ok(request) => request,
        Err(e) => return fail(&e),
    };
    with_client(args, |client, sandbox| {
        single(args, client, sandbox, &request)
    })
}

/// The embedded sandbox, started when `--sandbox` asks for it.
/// The embedded sandbox, when asked for, with the data of `data` (a JSON
/// file: campaigns, leads, webhooks, AJO campaigns) or the default data.
fn embedded_sandbox(asked: bool, data: Option<&Path>) -> Result<Option<Sandbox>, Error> {
    if !asked {
        return Ok(None);
    }
    let mut config = SandboxConfig::new();
    if let Some(path) = data {
        config = config.data(SandboxData::from_file(path)?);
    }
    Sandbox::start_with(config).map(Some)
}

/// Starts the sandbox if asked, builds the client, and runs `job` with it.
fn with_client(args: &RequestArgs, job: impl FnOnce(&Client, Option<&Sandbox>) -> u8) -> u8 {
    let sandbox = match embedded_sandbox(args.sandbox, args.sandbox_data.as_deref()) {
        Ok(sandbox) => sandbox,
        Err(e) => return fail(&e),
    };
    let client = match client(args, sandbox.as_ref()) {
        Ok(client) => client,
        Err(e) => return fail(&e),
    };
    let code = job(&client, sandbox.as_ref());
    if let (Some(sandbox), None) = (&sandbox, &args.leads_file) {
        webhook::print_flows(sandbox, args.json);
    }
    code
}

/// One request. With `--json` and the embedded sandbox, the output also
/// carries the sandbox's journal (`sandbox_journal`), which ends with the
/// process.
fn single(
    args: &RequestArgs,
    client: &Client,
    sandbox: Option<&Sandbox>,
    request: &CampaignRequest,
) -> u8 {
    if args.dry_run {
        return dry_run(client, request, args.json);
    }
    let requester = client.requester();
    let result = requester.request_campaign(request);
    let code = match &result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => e.exit_code(),
    };
    if args.json {
        let mut json = outcome_json(&requester.to_string(), request, &result);
        if let (Some(sandbox), Some(map)) = (sandbox, json.as_object_mut()) {
            let journal = serde_json::to_value(sandbox.journal()).unwrap_or_default();
            map.insert("sandbox_journal".into(), journal);
        }
        println!("{json}");
    } else {
        print_human(&requester.to_string(), request, &result);
    }
    code
}

fn dry_run(client: &Client, request: &CampaignRequest, json: bool) -> u8 {
    match client
        .plan(request)
        .and_then(|plans| print_plans(&plans, json))
    {
        Ok(()) => EXIT_OK,
        Err(e) => fail(&e),
    }
}

fn print_plans(plans: &[PlannedRequest], json: bool) -> Result<(), Error> {
    for plan in plans {
        if json {
            let line = serde_json::to_string(&plan).map_err(|e| Error::Config(e.to_string()))?;
            println!("{line}");
        } else {
            println!("{} {}", plan.method, plan.url);
            for (name, value) in &plan.headers {
                println!("{name}: {value}");
            }
            println!("\n{}\n", plan.body);
        }
    }
    Ok(())
}

/// A chunk's `status`, `error` and `delivery`, as the JSON outputs show them
/// (the library's JSON form of a chunk).
fn chunk_status(chunk: &ChunkReport) -> (&'static str, Option<String>, Option<&'static str>) {
    let error = match chunk.status() {
        ChunkStatus::Failed(e) => Some(e.to_string()),
        _ => None,
    };
    (
        chunk.status().as_str(),
        error,
        chunk.delivery().map(Delivery::as_str),
    )
}

/// The outcome's JSON form (the library's), with the client and target.
fn outcome_json(
    client: &str,
    request: &CampaignRequest,
    result: &Result<Outcome, Error>,
) -> serde_json::Value {
    let mut json = match result {
        Ok(outcome) => serde_json::to_value(outcome),
        Err(err) => serde_json::to_value(err),
    }
    .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    if let Some(map) = json.as_object_mut() {
        map.insert("client".into(), client.into());
        map.insert("target".into(), request.target().to_string().into());
    }
    json
}

fn print_human(client: &str, request: &CampaignRequest, result: &Result<Outcome, Error>) {
    let leads = request.leads().len();
    match result {
        Ok(outcome) => {
            println!(
                "{} accepted for {leads} lead(s) in {} chunk(s) via {client}",
                request.target(),
                outcome.chunks().len()
            );
            let ambiguous: Vec<_> = outcome.ambiguous().collect();
            for key in outcome.unmatched() {
                match ambiguous.iter().find(|a| a.key() == key) {
                    Some(several) => println!("  not served (several leads): {several}"),
                    None => println!("  not served (no such lead): {key}"),
                }
            }
            for chunk in outcome.chunks() {
                if let Some(id) = chunk.execution_id() {
                    println!("  chunk {}: execution {id}", chunk.index());
                }
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(outcome) = err.outcome() {
                for chunk in outcome.chunks() {
                    let status = match chunk.status() {
                        ChunkStatus::Accepted => "accepted".to_owned(),
                        ChunkStatus::Failed(e) => format!("failed ({})", e.delivery()),
                        ChunkStatus::NotAttempted => "not attempted (nothing sent)".to_owned(),
                        _ => "unknown".to_owned(),
                    };
                    eprintln!(
                        "  chunk {} ({} leads, from {}): {status}",
                        chunk.index(),
                        chunk.leads().len(),
                        chunk
                            .leads()
                            .first()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
}
