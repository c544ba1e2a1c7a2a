//! The REST lead API (`RestClient::describe_leads`, `get_leads`,
//! `sync_leads`, `associate_cookie`) against the sandbox's lead database:
//! what the database holds after each call, and the writes whose answer
//! was lost after they were applied (unknown, applied once, never resent).

use std::time::Duration;

use marketo_campaign::rest::{Lead, LeadSync, SyncAction};
use marketo_campaign::{Delivery, Error, RestClient, RetryPolicy};
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};

fn lead(fields: serde_json::Value) -> Lead {
    match fields {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn client(sandbox: &Sandbox) -> RestClient {
    sandbox
        .rest_client_builder()
        .retry(RetryPolicy::default())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[test]
fn describe_names_every_field_in_both_apis() {
    let sandbox = Sandbox::start().unwrap();
    let fields = client(&sandbox).describe_leads().unwrap();
    let by_soap = |name: &str| {
        fields
            .iter()
            .find(|f| f.soap_name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name}: {fields:?}"))
    };
    assert_eq!(by_soap("Email").rest_name.as_deref(), Some("email"));
    assert_eq!(by_soap("Email").data_type, "email");
    assert_eq!(by_soap("LeadScore").data_type, "integer");
    assert!(by_soap("Id").read_only);
    // The cookies field has no SOAP name.
    assert!(fields
        .iter()
        .any(|f| f.rest_name.as_deref() == Some("cookies") && f.soap_name.is_none()));
}

#[test]
fn create_then_update_by_email_then_read_back() {
    let sandbox = Sandbox::start().unwrap();
    let client = client(&sandbox);
    let first =
        lead(serde_json::json!({"email": "ann@new.example", "firstName": "Ann", "leadScore": 7}));
    let done = client
        .sync_leads(SyncAction::CreateOrUpdate, "email", &[first])
        .unwrap();
    let LeadSync::Created(id) = done[0] else {
        panic!("{done:?}")
    };
    let again = lead(serde_json::json!({"email": "ANN@new.example", "company": "Acme"}));
    let done = client
        .sync_leads(SyncAction::CreateOrUpdate, "email", &[again])
        .unwrap();
    assert_eq!(done, [LeadSync::Updated(id)]);
    let read = client
        .get_leads(
            "email",
            &["ann@new.example"],
            &["email", "firstName", "company", "leadScore"],
        )
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["id"], id);
    assert_eq!(read[0]["firstName"], "Ann");
    assert_eq!(read[0]["company"], "Acme");
    assert_eq!(read[0]["leadScore"], 7);
    let changes = sandbox.lead_changes();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.lead_id, c.what.as_str()))
            .collect::<Vec<_>>(),
        [(id, "created"), (id, "updated")]
    );
    assert_eq!(
        sandbox
            .lead(id)
            .unwrap()
            .fields
            .get("company")
            .map(String::as_str),
        Some("Acme")
    );
}

#[test]
fn skipped_records_say_why_and_write_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let client = client(&sandbox);
    let records = [
        lead(serde_json::json!({"email": "lead@company.com", "Foo__c": "x"})),
        lead(serde_json::json!({"email": "nobody@nowhere.example"})),
        lead(serde_json::json!({"email": "lead@company.com", "leadScore": "many"})),
    ];
    let done = client
        .sync_leads(SyncAction::UpdateOnly, "email", &records)
        .unwrap();
    let codes: Vec<&str> = done
        .iter()
        .map(|d| match d {
            LeadSync::Skipped { code, .. } => code.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, ["1006", "1004", "1003"]);
    assert!(sandbox.lead_changes().is_empty());
}

#[test]
fn bad_input_is_refused_unsent() {
    let sandbox = Sandbox::start().unwrap();
    let client = client(&sandbox);
    let too_many: Vec<Lead> = (0..301)
        .map(|i| lead(serde_json::json!({"email": format!("l{i}@x.example")})))
        .collect();
    for err in [
        client
            .sync_leads(SyncAction::CreateOrUpdate, "email", &[])
            .unwrap_err(),
        client
            .sync_leads(SyncAction::CreateOrUpdate, "email", &too_many)
            .unwrap_err(),
        client
            .sync_leads(SyncAction::CreateOrUpdate, "e mail", &too_many[..1])
            .unwrap_err(),
        client.get_leads("email", &["a,b"], &[]).unwrap_err(),
        client.associate_cookie(1002200, " ").unwrap_err(),
    ] {
        assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    }
    assert!(sandbox.lead_changes().is_empty());
}

#[test]
fn a_cookie_is_associated_and_finds_the_lead() {
    let sandbox = Sandbox::start().unwrap();
    let client = client(&sandbox);
    client
        .associate_cookie(1002201, "id:123-ABC-456&token:_mch-x-1")
        .unwrap();
    let read = client
        .get_leads("cookies", &["id:123-ABC-456&token:_mch-x-1"], &["email"])
        .unwrap();
    assert_eq!(read[0]["id"], 1002201);
    let err = client.associate_cookie(99, "id:1&token:x").unwrap_err();
    assert_eq!(err.rest_code().map(|c| c.code()), Some(1004), "{err}");
}

/// A sync that ran, then lost its answer (cut, timed out, or replaced by a
/// gateway's 502/503/504): unknown, never resent, applied exactly once.
#[test]
fn a_write_whose_answer_was_lost_is_unknown_and_applied_once() {
    let faults = Fault::ran_then_lost(Duration::from_secs(4));
    for fault in faults {
        let rule = FaultRule::always(fault.clone())
            .api(Api::Rest)
            .method("POST")
            .path_prefix("/rest/v1/leads.json");
        let sandbox = Sandbox::start_with(SandboxConfig::new().faults([rule])).unwrap();
        let client = client(&sandbox);
        let record = lead(serde_json::json!({"email": "once@new.example", "firstName": "Once"}));
        let err = client
            .sync_leads(SyncAction::CreateOrUpdate, "email", &[record])
            .unwrap_err();
        assert_eq!(err.delivery(), Delivery::Unknown, "{fault:?}: {err}");
        assert!(!matches!(err, Error::InvalidInput { .. }));
        let changes = sandbox.lead_changes();
        assert_eq!(changes.len(), 1, "{fault:?}: {changes:?}");
        assert_eq!(changes[0].what, "created");
    }
}

#[test]
fn static_lists_by_name_add_remove_and_membership() {
    use marketo_campaign::rest::ListMemberStatus;
    let sandbox = Sandbox::start().unwrap();
    let client = client(&sandbox);
    let lists = client.lists_by_name("Webinar Registrants").unwrap();
    assert_eq!(lists.len(), 1);
    let id = lists[0].id;
    assert!(client.lists_by_name("No Such List").unwrap().is_empty());
    let added = client.add_to_list(id, &[1002200, 99]).unwrap();
    assert_eq!(added[0], ListMemberStatus::Added);
    assert!(matches!(&added[1], ListMemberStatus::Skipped { code, .. } if code == "1004"));
    assert_eq!(
        client.list_membership(id, &[1002200, 1002201]).unwrap(),
        [ListMemberStatus::MemberOf, ListMemberStatus::NotMemberOf]
    );
    assert_eq!(
        client.remove_from_list(id, &[1002200]).unwrap(),
        [ListMemberStatus::Removed]
    );
    let err = client.add_to_list(4242, &[1002200]).unwrap_err();
    assert_eq!(err.rest_code().map(|c| c.code()), Some(1013), "{err}");
    assert_eq!(
        sandbox
            .lead_changes()
            .iter()
            .map(|c| c.what.as_str())
            .collect::<Vec<_>>(),
        ["added to list 1001", "removed from list 1001"]
    );
}

/// A list add that ran, then lost its answer: unknown, applied once.
#[test]
fn a_list_add_whose_answer_was_lost_is_unknown_and_applied_once() {
    let rule = FaultRule::always(Fault::ResetMidResponse)
        .api(Api::Rest)
        .method("POST")
        .path_prefix("/rest/v1/lists/");
    let sandbox = Sandbox::start_with(SandboxConfig::new().faults([rule])).unwrap();
    let err = client(&sandbox).add_to_list(1001, &[1002201]).unwrap_err();
    assert_eq!(err.delivery(), Delivery::Unknown, "{err}");
    assert_eq!(sandbox.lead_changes().len(), 1);
}

/// The sandbox records what happens as activities: a new lead, a changed
/// field, a list add, a campaign requested; REST reads them by type and
/// lead, in pages.
#[test]
fn activities_record_what_happened_and_page() {
    use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey};
    let sandbox = Sandbox::start().unwrap();
    let client = client(&sandbox);
    let types = client.activity_types().unwrap();
    let id_of = |name: &str| types.iter().find(|t| t.name == name).map(|t| t.id).unwrap();
    let token = client
        .activity_paging_token(chrono::DateTime::UNIX_EPOCH)
        .unwrap();
    let created = client
        .sync_leads(
            SyncAction::CreateOrUpdate,
            "email",
            &[lead(serde_json::json!({"email": "act@new.example"}))],
        )
        .unwrap();
    let LeadSync::Created(lead_id) = created[0] else {
        panic!("{created:?}")
    };
    client
        .sync_leads(
            SyncAction::UpdateOnly,
            "id",
            &[lead(serde_json::json!({"id": lead_id, "city": "Lyon"}))],
        )
        .unwrap();
    client.add_to_list(1001, &[lead_id]).unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(lead_id).unwrap()]).unwrap();
    assert!(client.request_campaign(&request).unwrap().is_complete());
    let all = [
        id_of("New Lead"),
        id_of("Change Data Value"),
        id_of("Add to List"),
        id_of("Request Campaign"),
    ];
    let page = client
        .lead_activities(&token, &all, &[lead_id], 300)
        .unwrap();
    let seen: Vec<(u32, Option<&str>)> = page
        .activities
        .iter()
        .map(|a| (a.type_id, a.primary_value.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (all[0], Some("act@new.example")),
            (all[1], Some("City")),
            (all[2], Some("Webinar Registrants")),
            (all[3], Some("Request Campaign Demo")),
        ]
    );
    assert_eq!(page.activities[3].campaign_id, Some(4496));
    assert!(!page.more);
    // Two at a time.
    let first = client.lead_activities(&token, &all, &[lead_id], 2).unwrap();
    assert_eq!(first.activities.len(), 2);
    assert!(first.more);
    let rest = client
        .lead_activities(&first.next_page_token, &all, &[lead_id], 2)
        .unwrap();
    assert_eq!(rest.activities[0].type_id, all[2]);
}
