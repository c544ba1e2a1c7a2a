//! The real RestClient and Fallback against the sandbox over loopback.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignScheduler, CampaignTarget, Delivery, Error,
    Fallback, LeadKey, LeadKeyType, Outcome, ProgramToken, RestClient, RestCode, ScheduleRequest,
    SoapClient,
};
use marketo_sandbox::{
    JournalToken, Sandbox, SandboxCampaign, SandboxConfig, SandboxData, SandboxLead,
};

fn webinar_request(leads: &[&str]) -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [
                ProgramToken::new("{{my.WebinarTitle}}", "Rust & REST <live>").unwrap(),
                ProgramToken::new("{{my.JoinLink}}", "https://x.example/?a=1&b=2").unwrap(),
            ],
        ),
        leads.iter().map(|l| l.parse::<LeadKey>().unwrap()),
    )
    .unwrap()
}

/// The default data and `n` generated leads (ids from 1).
fn generated(n: u32) -> Sandbox {
    Sandbox::start_with(
        SandboxConfig::new().data(SandboxData::default().with_generated_leads(1, n)),
    )
    .unwrap()
}

/// 1000 generated leads, every call 20 ms.
fn slow_thousand() -> Sandbox {
    let data = SandboxData::default().with_generated_leads(1, 1000);
    Sandbox::start_with(
        SandboxConfig::new()
            .data(data)
            .latency(Duration::from_millis(20)),
    )
    .unwrap()
}

/// SOAP, falling back to REST.
fn soap_then_rest(sandbox: &Sandbox) -> Fallback<SoapClient, RestClient> {
    Fallback::new(
        sandbox.soap_client().unwrap(),
        sandbox.rest_client().unwrap(),
    )
}

/// Ids 1 to `n`.
fn ids(n: u32) -> Vec<LeadKey> {
    (1..=n).map(|i| LeadKey::id(i).unwrap()).collect()
}

/// With an empty journal, `request` has one unmatched key and runs
/// nothing.
fn one_unmatched_runs_nothing(sandbox: &Sandbox, client: &RestClient, request: &CampaignRequest) {
    sandbox.clear_journal();
    let outcome = client.request_campaign(request).unwrap();
    assert_eq!(outcome.unmatched().count(), 1);
    assert!(sandbox.journal().is_empty());
}

/// The outcome of [`webinar_request`] for `leads` with `client`.
fn webinar_outcome(client: &impl CampaignRequester, leads: &[&str]) -> Outcome {
    client.request_campaign(&webinar_request(leads)).unwrap()
}

fn tokens() -> Vec<JournalToken> {
    vec![
        JournalToken {
            name: "{{my.WebinarTitle}}".into(),
            value: "Rust & REST <live>".into(),
        },
        JournalToken {
            name: "{{my.JoinLink}}".into(),
            value: "https://x.example/?a=1&b=2".into(),
        },
    ]
}

#[test]
fn named_request_with_email_keys_goes_through_rest() {
    let (sandbox, client) = crate::started(Sandbox::rest_client);
    let outcome = webinar_outcome(
        &client,
        &["EMAIL:lead@company.com", "EMAIL:AnotherLead@Company.com"],
    );
    assert!(outcome.is_complete());
    assert_eq!(outcome.chunks()[0].backend(), "rest");
    let run = crate::one_run(&sandbox, "rest", 1234, &[1002200, 1002201]);
    assert_eq!(run.tokens, tokens());
}

#[test]
fn every_soap_key_type_resolves_over_rest() {
    let (sandbox, client) = crate::started(Sandbox::rest_client);
    let lead = &SandboxData::default().leads[1];
    let keys = [
        LeadKey::new(LeadKeyType::Idnum, lead.id.to_string()),
        LeadKey::new(LeadKeyType::Cookie, lead.cookie.clone().unwrap()),
        LeadKey::new(LeadKeyType::Email, lead.email.clone().unwrap()),
        LeadKey::new(
            LeadKeyType::SfdcContactId,
            lead.sfdc_contact_id.clone().unwrap(),
        ),
        LeadKey::new(LeadKeyType::SfdcLeadId, lead.sfdc_lead_id.clone().unwrap()),
        LeadKey::new(
            LeadKeyType::SfdcOpptyId,
            lead.sfdc_oppty_id.clone().unwrap(),
        ),
    ];
    for key in keys {
        let key = key.unwrap();
        sandbox.clear_journal();
        let request = CampaignRequest::new(CampaignTarget::id(4496), [key.clone()]).unwrap();
        let outcome = client.request_campaign(&request).unwrap();
        assert!(outcome.is_complete(), "{key}");
        assert_eq!(sandbox.journal()[0].lead_ids, [lead.id], "{key}");
    }
    // Keys both leads share (account, lead owner) name no single lead: they
    // run nothing and are reported with both ids.
    for key in [
        LeadKey::new(
            LeadKeyType::SfdcAccountId,
            lead.sfdc_account_id.clone().unwrap(),
        ),
        LeadKey::new(
            LeadKeyType::SfdcLeadOwnerId,
            lead.sfdc_lead_owner_id.clone().unwrap(),
        ),
    ] {
        let key = key.unwrap();
        sandbox.clear_journal();
        let request = CampaignRequest::new(CampaignTarget::id(4496), [key.clone()]).unwrap();
        let outcome = client.request_campaign(&request).unwrap();
        assert!(sandbox.journal().is_empty(), "{key}");
        let ambiguous: Vec<_> = outcome.ambiguous().collect();
        assert_eq!(ambiguous.len(), 1, "{key}");
        assert_eq!(ambiguous[0].key(), &key);
        assert_eq!(ambiguous[0].lead_ids(), [1002200, 1002201]);
    }
    // LEADOWNEREMAIL has no documented filterType: refused, nothing sent.
    let owner = LeadKey::new(
        LeadKeyType::LeadOwnerEmail,
        lead.lead_owner_email.clone().unwrap(),
    )
    .unwrap();
    let request = CampaignRequest::new(CampaignTarget::id(4496), [owner]).unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn unknown_emails_are_reported_not_lost() {
    let (sandbox, client) = crate::started(Sandbox::rest_client);
    let outcome = webinar_outcome(
        &client,
        &[
            "EMAIL:nobody@company.com",
            "EMAIL:lead@company.com",
            "SFDCLEADID:00Q0000000NOPE",
        ],
    );
    assert!(!outcome.is_complete());
    let unmatched: Vec<String> = outcome.unmatched().map(ToString::to_string).collect();
    assert_eq!(
        unmatched,
        ["EMAIL:nobody@company.com", "SFDCLEADID:00Q0000000NOPE"]
    );
    assert_eq!(sandbox.journal()[0].lead_ids, [1002200]);

    // A chunk whose keys all miss runs nothing and is still reported.
    one_unmatched_runs_nothing(
        &sandbox,
        &client,
        &webinar_request(&["EMAIL:nobody@company.com"]),
    );
}

#[test]
fn a_lead_named_twice_runs_once() {
    let sandbox = generated(150);
    let client = sandbox.rest_client().unwrap();
    // Lead 1 by id in the first chunk and by email in the second.
    let mut leads: Vec<LeadKey> = (1..=120).map(|i| LeadKey::id(i).unwrap()).collect();
    leads.push(LeadKey::email("lead1@example.com").unwrap());
    let request = CampaignRequest::new(CampaignTarget::id(4496), leads).unwrap();
    client.request_campaign(&request).unwrap();
    let served: Vec<u32> = sandbox
        .journal()
        .iter()
        .flat_map(|e| e.lead_ids.clone())
        .collect();
    assert_eq!(served, (1..=120).collect::<Vec<_>>());
}

#[test]
fn with_soap_retired_auto_serves_through_rest_exactly_once() {
    for status in [410, 404] {
        let sandbox = Sandbox::start_with(SandboxConfig::new().soap_retired(Some(status))).unwrap();
        let client = soap_then_rest(&sandbox);
        assert!(client
            .to_string()
            .starts_with("Fallback(Soap(http://127.0.0.1:"));
        let outcome = webinar_outcome(&client, &["EMAIL:lead@company.com"]);
        assert_eq!(outcome.chunks().len(), 1);
        assert_eq!(outcome.chunks()[0].backend(), "rest");
        assert!(client.primary_retired());
        let journal = sandbox.journal();
        assert_eq!(journal.len(), 1, "exactly one run");
        assert_eq!(journal[0].api, "rest");
        assert_eq!(journal[0].campaign_id, 1234);
        assert_eq!(journal[0].lead_ids, [1002200]);
        assert_eq!(journal[0].tokens, tokens());
        // Later calls go straight to REST, even once SOAP answers again.
        sandbox.retire_soap(None);
        client
            .request_campaign(&webinar_request(&["EMAIL:anotherlead@company.com"]))
            .unwrap();
        assert_eq!(sandbox.journal()[1].api, "rest");
    }
}

#[test]
fn fallback_does_not_run_twice_when_soap_refuses() {
    let sandbox = Sandbox::start().unwrap();
    let wrong_key = marketo_campaign::SoapClient::builder(
        sandbox.soap_endpoint(),
        sandbox.soap_user_id(),
        "wrong",
    )
    .build()
    .unwrap();
    let client = Fallback::new(wrong_key, sandbox.rest_client().unwrap());
    let err = client
        .request_campaign(&webinar_request(&["EMAIL:lead@company.com"]))
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::Refused);
    assert!(
        sandbox.journal().is_empty(),
        "a refusal is not a reason to try REST"
    );
    assert!(!client.primary_retired());
}

#[test]
fn fallback_with_soap_healthy_uses_soap() {
    let sandbox = Sandbox::start().unwrap();
    let client = soap_then_rest(&sandbox);
    client
        .request_campaign(&webinar_request(&["EMAIL:lead@company.com"]))
        .unwrap();
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].api, "soap");
}

#[test]
fn soap_retired_mid_run_hands_the_rest_to_rest() {
    let sandbox = slow_thousand();
    let client = soap_then_rest(&sandbox);
    let request = by_id(ids(1000));
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            // Retire SOAP after a few chunks have gone through.
            while sandbox.journal().len() < 3 {
                std::thread::sleep(Duration::from_millis(2));
            }
            sandbox.retire_soap(Some(410));
        });
        client.request_campaign(&request).unwrap()
    });
    let journal = sandbox.journal();
    let served: Vec<u32> = journal.iter().flat_map(|e| e.lead_ids.clone()).collect();
    assert_eq!(
        served,
        (1..=1000).collect::<Vec<_>>(),
        "every lead once, in order"
    );
    let by_api: BTreeMap<&str, usize> = journal.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.api.as_str()).or_default() += 1;
        m
    });
    assert!(by_api["soap"] >= 3 && by_api["rest"] >= 1, "{by_api:?}");
    let backends: Vec<&str> = outcome.chunks().iter().map(|c| c.backend()).collect();
    assert_eq!(backends.len(), 10);
    assert_eq!(
        backends.iter().filter(|b| **b == "soap").count(),
        by_api["soap"]
    );
    assert_eq!(
        outcome
            .chunks()
            .iter()
            .map(|c| c.index())
            .collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn token_expiring_mid_run_is_renewed_without_losing_or_repeating_a_chunk() {
    let sandbox = slow_thousand();
    let client = sandbox.rest_client().unwrap();
    let request = by_id(ids(1000));
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            for target in [3, 6] {
                while sandbox.journal().len() < target {
                    std::thread::sleep(Duration::from_millis(2));
                }
                sandbox.expire_tokens();
            }
        });
        client.request_campaign(&request).unwrap()
    });
    assert!(outcome.is_complete());
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 10);
    let served: Vec<u32> = journal.iter().flat_map(|e| e.lead_ids.clone()).collect();
    assert_eq!(served, (1..=1000).collect::<Vec<_>>());
}

#[test]
fn short_lived_tokens_are_renewed_before_expiry() {
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .data(SandboxData::default().with_generated_leads(1, 300))
            .token_lifetime(Duration::from_secs(1))
            .latency(Duration::from_millis(150)),
    )
    .unwrap();
    let client = sandbox.rest_client().unwrap();
    for _ in 0..2 {
        sandbox.clear_journal();
        let request = by_id(ids(300));
        client.request_campaign(&request).unwrap();
        assert_eq!(sandbox.journal().len(), 3);
    }
}

#[test]
fn campaign_look_ups_name_the_candidates() {
    let mut data = SandboxData::default();
    for id in [7001, 7002] {
        data.campaigns.push(SandboxCampaign {
            id,
            name: "Twin".into(),
            program: "Twins".into(),
            requestable: true,
            tokens: Vec::new(),
            token_defaults: Default::default(),
            flow: Vec::new(),
        });
    }
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap();
    let client = sandbox.rest_client().unwrap();
    let named = |campaign: &str, program: &str| {
        CampaignRequest::new(
            CampaignTarget::named(campaign, program, []),
            [LeadKey::id(1002200).unwrap()],
        )
        .unwrap()
    };
    let err = client
        .request_campaign(&named("Twin", "Twins"))
        .unwrap_err();
    assert!(matches!(err, Error::Lookup(_)), "{err}");
    assert!(
        err.to_string().contains("7001") && err.to_string().contains("7002"),
        "{err}"
    );
    let err = client
        .request_campaign(&named("Nope", "Webinars"))
        .unwrap_err();
    assert!(matches!(err, Error::Lookup(_)), "{err}");
    assert!(err.to_string().contains("Nope"), "{err}");
    assert!(sandbox.journal().is_empty());
}

#[test]
fn rest_refusals_map_to_codes() {
    let (sandbox, client) = crate::started(Sandbox::rest_client);
    let by_id =
        |id| CampaignRequest::new(CampaignTarget::id(id), [LeadKey::id(1002200).unwrap()]).unwrap();
    let err = client.request_campaign(&by_id(5000)).unwrap_err();
    assert_eq!(err.rest_code(), Some(RestCode::InvalidValue));
    assert_eq!(err.delivery(), Delivery::Refused);
    let err = client.request_campaign(&by_id(999_999)).unwrap_err();
    assert_eq!(err.rest_code(), Some(RestCode::CampaignNotFound));
    // An unknown id is found out by the look-up, before any trigger: it is
    // reported by key, not refused with 1004.
    let outcome = client
        .request_campaign(
            &CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(42).unwrap()]).unwrap(),
        )
        .unwrap();
    assert_eq!(
        outcome.unmatched().cloned().collect::<Vec<_>>(),
        [LeadKey::id(42).unwrap()]
    );
    assert!(sandbox.journal().is_empty());
}

#[test]
fn more_than_100_tokens_is_refused_before_sending() {
    let (sandbox, client) = crate::started(Sandbox::rest_client);
    let tokens = (0..101).map(|i| ProgramToken::new(format!("{{{{my.T{i}}}}}"), "v").unwrap());
    let request = CampaignRequest::new(
        CampaignTarget::named("Send Webinar Reminder", "Webinars", tokens),
        [LeadKey::id(1002200).unwrap()],
    )
    .unwrap();
    let err = client.request_campaign(&request).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert_eq!(err.delivery(), Delivery::NotSent);
    assert!(sandbox.journal().is_empty());
}

#[test]
fn bad_client_secret_is_an_auth_error_without_the_secret() {
    let (sandbox, client) = crate::started(|sandbox| {
        RestClient::builder(sandbox.rest_endpoint(), sandbox.client_id(), "s3cr3t-wrong").build()
    });
    let err = client
        .request_campaign(&by_id([LeadKey::id(1002200).unwrap()]))
        .unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert_eq!(err.delivery(), Delivery::NotSent);
    assert!(!format!("{err} {err:?} {client:?}").contains("s3cr3t"));
    assert!(sandbox.journal().is_empty());
}

#[test]
fn schedules_over_rest_and_soap() {
    let sandbox = Sandbox::start().unwrap();
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 17, 0, 0).unwrap();
    let request = crate::newsletter_schedule("December", at);
    let rest = sandbox.rest_client().unwrap();
    assert_eq!(rest.schedule_campaign(&request).unwrap().backend(), "rest");
    let soap = sandbox.soap_client().unwrap();
    assert_eq!(soap.schedule_campaign(&request).unwrap().backend(), "soap");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(
        (journal[0].api.as_str(), journal[0].campaign_id),
        ("rest", 5000)
    );
    assert_eq!(journal[0].run_at.as_deref(), Some("2026-12-01T17:00:00Z"));
    assert_eq!(
        (journal[1].api.as_str(), journal[1].campaign_id),
        ("soap", 5000)
    );
    assert_eq!(
        journal[1].run_at.as_deref(),
        Some("2026-12-01T09:00:00-08:00")
    );
    assert_eq!(journal[1].tokens[0].value, "December");

    // By id: REST can, SOAP cannot, and Fallback carries it over.
    let by_id = ScheduleRequest::new(CampaignTarget::id(5000), None).unwrap();
    assert!(soap.schedule_campaign(&by_id).is_err());
    let both = Fallback::new(soap, rest);
    assert_eq!(both.schedule_campaign(&by_id).unwrap().backend(), "rest");
    assert_eq!(sandbox.journal().len(), 3);
}

// --- Look-ups that keep SOAP's meaning (issue 8, defect 11) ---------------

/// The lead ids the journal says ran, in order.
fn ran(sandbox: &Sandbox) -> Vec<u32> {
    sandbox
        .journal()
        .iter()
        .flat_map(|e| e.lead_ids.clone())
        .collect()
}

fn by_id(leads: impl IntoIterator<Item = LeadKey>) -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), leads).unwrap()
}

#[test]
fn an_unknown_idnum_is_reported_by_key_and_every_other_lead_runs() {
    let sandbox = generated(300);
    let client = sandbox.rest_client().unwrap();
    // 250 ids in three chunks; id 999999 (no such lead) sits in the first.
    let mut leads: Vec<LeadKey> = (1..=249).map(|i| LeadKey::id(i).unwrap()).collect();
    leads.insert(50, LeadKey::id(999_999).unwrap());
    let outcome = client.request_campaign(&by_id(leads)).unwrap();
    assert_eq!(outcome.chunks().len(), 3);
    assert_eq!(outcome.accepted_chunks(), 3);
    assert!(!outcome.is_complete());
    assert_eq!(
        outcome.chunks()[0].unmatched(),
        [LeadKey::id(999_999).unwrap()]
    );
    assert!(outcome.chunks()[1].unmatched().is_empty());
    assert!(outcome.ambiguous().next().is_none());
    // Each chunk ran, for every known lead, once.
    assert_eq!(sandbox.journal().len(), 3);
    assert_eq!(ran(&sandbox), (1..=249).collect::<Vec<_>>());

    // A chunk whose only key is an unknown id runs nothing, still reported.
    one_unmatched_runs_nothing(&sandbox, &client, &by_id([LeadKey::id(999_999).unwrap()]));
}

#[test]
fn idnum_look_ups_share_the_300_value_batches() {
    // 650 ids: three look-ups (300, 300, 50), then seven triggers.
    let sandbox = generated(650);
    let client = sandbox.rest_client().unwrap();
    let request = by_id(ids(650));
    let plans = client.plan(&request).unwrap();
    let look_ups: Vec<&str> = plans
        .iter()
        .filter(|p| p.url.contains("/leads.json"))
        .map(|p| p.url.as_str())
        .collect();
    assert_eq!(look_ups.len(), 3);
    assert!(look_ups[0].contains("?filterType=id&filterValues=1,2,3,"));
    assert!(look_ups[0].ends_with(",300&fields=id"), "{}", look_ups[0]);
    assert!(look_ups[2].contains("filterValues=601,"));
    // The plan is honest: trigger bodies depend on the answers.
    assert!(plans.iter().all(|p| p.method == "GET"), "{plans:?}");
    let outcome = client.request_campaign(&request).unwrap();
    assert!(outcome.is_complete());
    assert_eq!(ran(&sandbox), (1..=650).collect::<Vec<_>>());
}

/// Data where two leads share an email, listed highest id first (so "the
/// first in data order" and "the lowest id" differ).
fn shared_email_data() -> SandboxData {
    let mut data = SandboxData::default();
    for id in [20, 10] {
        data.leads.push(SandboxLead {
            id,
            email: Some("shared@company.com".into()),
            ..SandboxLead::default()
        });
    }
    data
}

#[test]
fn a_key_matching_several_leads_runs_none_of_them_and_is_listed() {
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(shared_email_data())).unwrap();
    let client = sandbox.rest_client().unwrap();
    let shared = LeadKey::email("Shared@Company.com").unwrap();
    let outcome = client
        .request_campaign(&by_id([
            shared.clone(),
            LeadKey::email("lead@company.com").unwrap(),
        ]))
        .unwrap();
    // The chunk ran for the lead named alone, not for either shared one.
    assert_eq!(ran(&sandbox), [1002200]);
    assert!(!outcome.is_complete());
    let chunk = &outcome.chunks()[0];
    assert_eq!(chunk.unmatched(), std::slice::from_ref(&shared));
    assert_eq!(chunk.ambiguous().len(), 1);
    assert_eq!(chunk.ambiguous()[0].key(), &shared);
    assert_eq!(chunk.ambiguous()[0].lead_ids(), [10, 20]);
    assert_eq!(
        chunk.ambiguous()[0].to_string(),
        "EMAIL:Shared@Company.com matches leads 10, 20"
    );

    // Naming the one meant by IDNUM runs it, and only it.
    sandbox.clear_journal();
    let outcome = client
        .request_campaign(&by_id([LeadKey::id(20).unwrap(), shared]))
        .unwrap();
    assert_eq!(ran(&sandbox), [20]);
    assert_eq!(outcome.ambiguous().count(), 1);
}

#[test]
fn the_sandbox_names_the_same_lead_for_a_shared_key_over_soap_and_rest() {
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(shared_email_data())).unwrap();
    let shared = LeadKey::email("shared@company.com").unwrap();
    // REST lists both, lowest id first; SOAP names one lead per key: the
    // lowest id, the first leads.json lists (not the first in data order).
    let outcome = sandbox
        .rest_client()
        .unwrap()
        .request_campaign(&by_id([shared.clone()]))
        .unwrap();
    let listed = outcome.ambiguous().next().unwrap().lead_ids().to_vec();
    assert_eq!(listed, [10, 20]);
    sandbox
        .soap_client()
        .unwrap()
        .request_campaign(&by_id([shared]))
        .unwrap();
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].api, "soap");
    assert_eq!(journal[0].lead_ids, listed[..1]);
}

/// A port that accepts connections and answers nothing: `accepted()` says
/// whether anything connected.
struct Silent(std::net::TcpListener);

impl Silent {
    fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Silent(listener)
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    fn accepted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn leadowneremail_is_refused_before_anything_is_sent_over_rest() {
    let owner = LeadKey::new(LeadKeyType::LeadOwnerEmail, "owner@company.com").unwrap();
    let request = by_id([LeadKey::email("lead@company.com").unwrap(), owner]);
    let silent = Silent::new();
    let rest = RestClient::builder(silent.url(), "id", "secret")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = rest.request_campaign(&request).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(err.delivery(), Delivery::NotSent);
    assert!(err.to_string().contains("LEADOWNEREMAIL"), "{err}");
    assert!(rest.plan(&request).is_err(), "the dry run says so too");
    assert!(
        !silent.accepted(),
        "nothing was sent, not even a token request"
    );

    // Fallback(SOAP -> REST) with SOAP down: REST refuses, sends nothing.
    let sandbox = Sandbox::start().unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/soap/mktows/2_9", listener.local_addr().unwrap())
    };
    let soap_down = marketo_campaign::SoapClient::builder(
        closed,
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .retry(marketo_campaign::RetryPolicy::never())
    .build()
    .unwrap();
    let fallback = Fallback::new(soap_down, rest);
    let err = fallback.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    assert!(!silent.accepted(), "nothing went over REST");

    // Fallback(REST -> SOAP): the key stays on SOAP, which serves it.
    let fallback = Fallback::new(
        sandbox.rest_client().unwrap(),
        sandbox.soap_client().unwrap(),
    );
    let outcome = fallback.request_campaign(&request).unwrap();
    assert_eq!(outcome.chunks()[0].backend(), "soap");
    let runs: Vec<(String, Vec<u32>)> = sandbox
        .journal()
        .into_iter()
        .map(|e| (e.api, e.lead_ids))
        .collect();
    // Both default leads have that owner: SOAP names the lowest id.
    assert_eq!(runs, [("soap".to_owned(), vec![1002200])]);
}

#[test]
fn a_lead_with_several_cookies_is_found_by_each_of_them() {
    let cookie_lead = |id, cookies: &str| SandboxLead {
        id,
        cookie: Some(cookies.into()),
        ..SandboxLead::default()
    };
    let mut data = SandboxData::default();
    data.leads.extend([
        cookie_lead(
            30,
            "id:561-HYG-937&token:_mch-a-1,id:561-HYG-937&token:_mch-a-2",
        ),
        cookie_lead(31, "id:561-HYG-937&token:_mch-b-1"),
    ]);
    let sandbox = Sandbox::start_with(SandboxConfig::new().data(data)).unwrap();
    let cookie = |v: &str| LeadKey::new(LeadKeyType::Cookie, v).unwrap();
    let request = by_id([
        cookie("id:561-HYG-937&token:_mch-a-2"),
        cookie("id:561-HYG-937&token:_mch-b-1"),
        cookie("id:561-HYG-937&token:_mch-a-1"),
    ]);
    let outcome = sandbox
        .rest_client()
        .unwrap()
        .request_campaign(&request)
        .unwrap();
    assert!(
        outcome.is_complete(),
        "{:?}",
        outcome.chunks()[0].unmatched()
    );
    // Lead 30, named by both its cookies, runs once.
    assert_eq!(ran(&sandbox), [30, 31]);
    // SOAP finds it by either cookie as well.
    for value in [
        "id:561-HYG-937&token:_mch-a-1",
        "id:561-HYG-937&token:_mch-a-2",
    ] {
        sandbox.clear_journal();
        sandbox
            .soap_client()
            .unwrap()
            .request_campaign(&by_id([cookie(value)]))
            .unwrap();
        assert_eq!(ran(&sandbox), [30], "{value}");
    }
}

/// An id with tokens: SOAP refuses it before sending (not sent), Fallback
/// serves it over REST without retiring SOAP, REST journals exactly it.
#[test]
fn an_id_with_tokens_is_refused_by_soap_and_served_by_fallback_over_rest() {
    use marketo_campaign::{Delivery, Fallback, ProgramToken};
    let sandbox = marketo_sandbox::Sandbox::start().unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::id_with_tokens(
            1234,
            [ProgramToken::new("{{my.WebinarTitle}}", "Migrating off SOAP").unwrap()],
        ),
        [LeadKey::id(1002200).unwrap()],
    )
    .unwrap();
    let soap = sandbox.soap_client().unwrap();
    let err = soap.request_campaign(&request).unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(soap.plan(&request).is_err());
    assert!(sandbox.journal().is_empty());
    let fallback = Fallback::new(soap, sandbox.rest_client().unwrap());
    let outcome = fallback.request_campaign(&request).unwrap();
    assert_eq!(outcome.chunks()[0].backend(), "rest");
    assert!(
        !fallback.primary_retired(),
        "SOAP is not gone, it cannot say this"
    );
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].campaign_id, 1234);
    assert_eq!(journal[0].lead_ids, [1002200]);
    assert_eq!(journal[0].tokens.len(), 1);
}
