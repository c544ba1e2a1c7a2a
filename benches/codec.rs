//! The server-side SOAP codec: reading a 100-lead `requestCampaign`
//! envelope (header, 100 lead keys, three program tokens), beside the
//! sandbox's reader from before the codec (a quick-xml `NsReader` tree,
//! then a walk), in the same run.
//!
//! Budget (DESIGN.md, "Budgets"): reading a 100-lead envelope under 10 µs.
//!
//! Run with `cargo bench --bench codec`. The baseline is
//! `benches/baseline/soap_tree_reader.rs`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use marketo_campaign::soap::{read_envelope, Authenticator, Operation};
use marketo_campaign::{
    CampaignRequest, CampaignTarget, FixedClock, LeadKey, ProgramToken, SoapClient,
};

#[path = "baseline/soap_tree_reader.rs"]
#[allow(dead_code)]
mod soap_tree_reader;

/// Marketo's published signature example.
const USER_ID: &str = "bigcorp1_461839624B16E06BA2D663";
const ENCRYPTION_KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";
const TIMESTAMP: &str = "2010-04-09T14:04:54-07:00";
const LEADS: usize = 100;

/// A signed envelope, as `SoapClient` writes it: a campaign by name with
/// three tokens and 100 EMAIL keys (every 25th holds an `&`, so both
/// readers decode references).
fn envelope() -> Vec<u8> {
    let leads = (0..LEADS).map(|i| {
        let address = if i % 25 == 0 {
            format!("r&d.team{i}@company.com")
        } else {
            format!("first.last{i}@company.com")
        };
        LeadKey::email(address).expect("valid bench lead key")
    });
    let tokens = [
        ProgramToken::new("{{my.WebinarTitle}}", "Migrating off SOAP").expect("token"),
        ProgramToken::new("{{my.JoinLink}}", "https://example.com/join?id=7&src=mail")
            .expect("token"),
        ProgramToken::new("{{my.WebinarImage}}", "https://example.com/w.png").expect("token"),
    ];
    let request = CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", tokens),
        leads,
    )
    .expect("valid bench request");
    let client = SoapClient::builder(
        "https://123-ABC-456.mktoapi.com/soap/mktows/2_9",
        USER_ID,
        ENCRYPTION_KEY,
    )
    .clock(FixedClock::parse(TIMESTAMP).expect("timestamp"))
    .build()
    .expect("client");
    client
        .envelope(&request, request.leads())
        .expect("envelope")
}

fn read_100_leads(c: &mut Criterion) {
    let body = envelope();
    let auth = Authenticator::new(USER_ID, ENCRYPTION_KEY)
        .clock(FixedClock::parse(TIMESTAMP).expect("timestamp"));
    let mut group = c.benchmark_group("read_100_lead_envelope");
    group.throughput(Throughput::Bytes(body.len() as u64));

    // The codec: envelope to header and borrowed parameters (what the
    // sandbox reads).
    group.bench_function("codec", |b| {
        b.iter(|| {
            let envelope = read_envelope(black_box(&body)).expect("read");
            match envelope.into_operation() {
                Ok(Operation::RequestCampaign(call)) => call.lead_keys().len(),
                _ => unreachable!("a requestCampaign"),
            }
        })
    });

    // The codec, then a validated CampaignRequest (what a bridge reads).
    group.bench_function("codec_to_campaign_request", |b| {
        b.iter(|| {
            let envelope = read_envelope(black_box(&body)).expect("read");
            match envelope.into_operation() {
                Ok(Operation::RequestCampaign(call)) => call.to_request().expect("valid"),
                _ => unreachable!("a requestCampaign"),
            }
        })
    });

    // The codec and the signature check.
    group.bench_function("codec_and_verify", |b| {
        b.iter(|| {
            let envelope = read_envelope(black_box(&body)).expect("read");
            auth.verify(envelope.auth()).expect("signed");
            envelope.into_operation().is_ok()
        })
    });

    // Today's (pre-codec) sandbox reader: a tree, then a walk.
    group.bench_function("old_sandbox_reader", |b| {
        b.iter(|| soap_tree_reader::read(black_box(&body)).expect("read"))
    });
    group.finish();
}

criterion_group!(benches, read_100_leads);
criterion_main!(benches);
