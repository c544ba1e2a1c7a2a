//! The bridge's own cost per call, against a direct `RestClient` call to
//! the same sandbox, in one run (issue: overhead ≤ 10% on loopback).
//!
//! Run with `cargo bench --bench bridge`; on a small machine pinned to one
//! CPU, as benches/round_trip.rs explains: `taskset -c 0 cargo bench --bench
//! bridge`.
//!
//! Both sides run one `requestCampaign` for one lead by email: a REST lead
//! look-up (`leads.json`) and a trigger (`trigger.json`) to the sandbox over
//! loopback, with one shared token and the limiter off.
//!
//! - `bridge/in_process`: `Bridge::answer` on a signed SOAP envelope (read
//!   and verify the envelope, build the request, the two REST calls, write
//!   the SOAP answer) against `RestClient::request_campaign`. This is the
//!   bridge's own cost: what it adds to the REST calls it makes.
//! - `bridge/over_loopback`: a `SoapClient` calling the served bridge (sign,
//!   write, the HTTP hop into the bridge's server, the above, the answer
//!   read back) against the same direct call. The extra hop replaces the
//!   one the legacy integration made to Marketo's SOAP endpoint.
//!
//! Each group's two benches time the same interleaved calls; the paired
//! medians are printed as `paired ...` lines (the figure held against the
//! target). The journal is emptied every 500 pairs, outside timing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use marketo_bridge::{Bridge, HttpRequest, RunningBridge};
use marketo_campaign::soap::{Authenticator, SOAP_ACTION_REQUEST_CAMPAIGN};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, RestClient, RetryPolicy,
    SoapClient,
};
use marketo_sandbox::{Sandbox, SandboxConfig};

const CAMPAIGN_ID: u32 = 4496;
const CLEAR_EVERY: u64 = 500;

struct Fixture {
    sandbox: Sandbox,
    rest: RestClient,
    bridge: Bridge<RestClient>,
    /// The same bridge configuration, served on loopback.
    served: RunningBridge,
    soap: SoapClient,
    request: CampaignRequest,
    /// `request` as a signed SOAP envelope.
    envelope: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let sandbox = Sandbox::start_with(
            SandboxConfig::new()
                .rate_limit(1_000_000, Duration::from_secs(1))
                .max_concurrent(64),
        )
        .expect("the sandbox starts");
        let rest = sandbox
            .rest_client_builder()
            .retry(RetryPolicy::never())
            .rate_limit(None)
            .build()
            .expect("a REST client for the sandbox");
        let auth = || Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
        let bridge = Bridge::rest(rest.clone(), auth());
        let served = Bridge::rest(rest.clone(), auth())
            .serve("127.0.0.1:0".parse().expect("an address"), false)
            .expect("the bridge serves");
        let soap = SoapClient::builder(
            served.endpoint(),
            sandbox.soap_user_id(),
            sandbox.soap_encryption_key(),
        )
        .retry(RetryPolicy::never())
        .rate_limit(None)
        .build()
        .expect("a SOAP client for the bridge");
        let request = CampaignRequest::new(
            CampaignTarget::id(CAMPAIGN_ID),
            [LeadKey::email("lead@company.com").expect("a valid email")],
        )
        .expect("a valid request");
        let envelope = soap
            .envelope(&request, request.leads())
            .expect("the client writes the envelope");
        Fixture {
            sandbox,
            rest,
            bridge,
            served,
            soap,
            request,
            envelope,
        }
    }

    fn in_process(&self) -> u16 {
        self.bridge
            .answer(&HttpRequest {
                method: "POST",
                url: "/soap/mktows/2_9",
                host: Some("127.0.0.1"),
                soap_action: Some(SOAP_ACTION_REQUEST_CAMPAIGN),
                body: &self.envelope,
            })
            .status
    }

    /// Checks, once per side, that a call ran the campaign once over REST.
    fn assert_one_run(&self, side: &str) {
        let journal = self.sandbox.journal();
        assert_eq!(journal.len(), 1, "{side}: one run journaled");
        assert_eq!(journal[0].api, "rest", "{side}");
        assert_eq!(journal[0].campaign_id, CAMPAIGN_ID, "{side}");
        self.sandbox.clear_journal();
    }
}

use paired::{Group, Side};
use test_support::paired;

/// A group of two benches over the same interleaved calls (benches/paired).
fn paired_group(
    c: &mut Criterion,
    fx: &Fixture,
    name: &str,
    ours: (&str, &dyn Fn()),
    baseline: (&str, &dyn Fn()),
) {
    let clear = || fx.sandbox.clear_journal();
    let group = Group {
        name,
        throughput: None,
        clear: &clear,
        clear_every: CLEAR_EVERY,
    };
    paired::paired_group(
        c,
        &group,
        Side {
            id: ours.0,
            call: ours.1,
        },
        Side {
            id: baseline.0,
            call: baseline.1,
        },
    );
}

fn bridge(c: &mut Criterion) {
    let fx = Fixture::new();
    let direct = || {
        black_box(
            fx.rest
                .request_campaign(black_box(&fx.request))
                .expect("the REST call succeeds"),
        );
    };
    // Each side does what it claims, once, before it is timed.
    fx.sandbox.clear_journal();
    direct();
    fx.assert_one_run("direct REST");
    assert_eq!(fx.in_process(), 200, "the bridge answers success");
    fx.assert_one_run("Bridge::answer");
    fx.soap
        .request_campaign(&fx.request)
        .expect("the SOAP call through the bridge succeeds");
    fx.assert_one_run("SoapClient via the bridge");

    let in_process = || {
        black_box(fx.in_process());
    };
    paired_group(
        c,
        &fx,
        "bridge/in_process",
        ("Bridge::answer", &in_process),
        ("RestClient::request_campaign", &direct),
    );
    let over_loopback = || {
        black_box(
            fx.soap
                .request_campaign(black_box(&fx.request))
                .expect("the SOAP call through the bridge succeeds"),
        );
    };
    paired_group(
        c,
        &fx,
        "bridge/over_loopback",
        ("SoapClient via the bridge", &over_loopback),
        ("RestClient::request_campaign", &direct),
    );
    drop(fx.served);
}

criterion_group!(benches, bridge);
criterion_main!(benches);
