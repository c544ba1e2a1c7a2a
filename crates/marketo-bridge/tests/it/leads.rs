//! SOAP's lead operations through the bridge (`syncLead`, `getLead`,
//! `describeMObject`), over the sandbox's REST lead database: what the
//! database holds after each call, Marketo's faults, the write whose answer
//! was lost after it was applied, and unmodified PHP and zeep clients
//! running a legacy flow (syncLead → getLead → listOperation ADDTOLIST,
//! ISMEMBEROFLIST → describeMObject → requestCampaign by name with tokens →
//! getLeadActivity).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use marketo_bridge::{Bridge, RunningBridge};
use marketo_campaign::soap::Authenticator;
use marketo_sandbox::{Api, Fault, FaultRule, Sandbox, SandboxConfig};

fn serve(sandbox: &Sandbox) -> RunningBridge {
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    Bridge::rest(sandbox.rest_client().unwrap(), auth)
        .serve("127.0.0.1:0".parse().unwrap(), false)
        .unwrap()
}

/// Posts `ns1:params<Operation>` holding `params`, signed now: status and
/// body.
fn call(sandbox: &Sandbox, server: &RunningBridge, operation: &str, params: &str) -> (u16, String) {
    let element = format!("params{}{}", operation[..1].to_uppercase(), &operation[1..]);
    crate::bridge::post_signed(sandbox, server, &element, params)
}

/// The fault code of a fault answer.
fn fault_code(answer: &(u16, String)) -> u32 {
    assert_eq!(answer.0, 500, "{}", answer.1);
    let code = answer
        .1
        .split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_default();
    code.parse()
        .unwrap_or_else(|_| panic!("no code: {}", answer.1))
}

const NEW_LEAD: &str = concat!(
    "<leadRecord><Email>new.lead@example.com</Email><leadAttributeList>",
    "<attribute><attrName>FirstName</attrName><attrValue>Ann</attrValue></attribute>",
    "<attribute><attrName>LastName</attrName><attrValue>O'Hara &amp; Sons</attrValue></attribute>",
    "<attribute><attrName>LeadScore</attrName><attrType>integer</attrType><attrValue>42</attrValue></attribute>",
    "</leadAttributeList></leadRecord>",
);

#[test]
fn sync_lead_creates_then_updates_and_returns_the_lead() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let params = format!("{NEW_LEAD}<returnLead>true</returnLead>");
    let (status, body) = call(&sandbox, &server, "syncLead", &params);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<status>CREATED</status>"), "{body}");
    let changes = sandbox.lead_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let id = changes[0].lead_id;
    assert!(body.contains(&format!("<leadId>{id}</leadId>")), "{body}");
    // The returned lead is a re-read: SOAP names, escaped values.
    assert!(
        body.contains("<Email>new.lead@example.com</Email>"),
        "{body}"
    );
    assert!(
        body.contains("<attrName>LastName</attrName><attrType>string</attrType><attrValue>O&apos;Hara &amp; Sons</attrValue>")
            || body.contains("<attrName>LastName</attrName><attrType>string</attrType><attrValue>O'Hara &amp; Sons</attrValue>"),
        "{body}"
    );
    assert!(
        body.contains(
            "<attrName>LeadScore</attrName><attrType>integer</attrType><attrValue>42</attrValue>"
        ),
        "{body}"
    );
    let lead = sandbox.lead(id).unwrap();
    assert_eq!(lead.fields["firstName"], "Ann");
    assert_eq!(lead.fields["lastName"], "O'Hara & Sons");
    assert_eq!(lead.fields["leadScore"], "42");
    // The same email again: updated, by id, once more.
    let again = "<leadRecord><Email>NEW.LEAD@example.com</Email><leadAttributeList><attribute><attrName>Company</attrName><attrValue>Acme</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    let (status, body) = call(&sandbox, &server, "syncLead", again);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<status>UPDATED</status>"), "{body}");
    assert!(!body.contains("<leadRecord>"), "{body}");
    assert_eq!(sandbox.lead_changes().len(), 2);
    assert_eq!(sandbox.lead(id).unwrap().fields["company"], "Acme");
    // A cookie is associated after the sync.
    let cookie = "<leadRecord><Id>1002201</Id></leadRecord><returnLead>false</returnLead><marketoCookie>id:123-ABC-456&amp;token:_mch-x-1</marketoCookie>";
    let (status, body) = call(&sandbox, &server, "syncLead", cookie);
    assert_eq!(status, 200, "{body}");
    assert!(sandbox
        .lead(1002201)
        .and_then(|l| l.cookie)
        .is_some_and(|c| c.contains("id:123-ABC-456&token:_mch-x-1")));
}

#[test]
fn get_lead_answers_soap_names_and_every_match() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let params = format!("{NEW_LEAD}<returnLead>false</returnLead>");
    assert_eq!(call(&sandbox, &server, "syncLead", &params).0, 200);
    let by_email =
        "<leadKey><keyType>EMAIL</keyType><keyValue>new.lead@example.com</keyValue></leadKey>";
    let (status, body) = call(&sandbox, &server, "getLead", by_email);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<count>1</count>"), "{body}");
    assert!(
        body.contains(
            "<attrName>FirstName</attrName><attrType>string</attrType><attrValue>Ann</attrValue>"
        ),
        "{body}"
    );
    // Fields the lead has no value for are left out.
    assert!(!body.contains("<attrName>City</attrName>"), "{body}");
    let unknown =
        "<leadKey><keyType>EMAIL</keyType><keyValue>nobody@nowhere.example</keyValue></leadKey>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "getLead", unknown)),
        20103
    );
    let by_id = "<leadKey><keyType>IDNUM</keyType><keyValue>1002200</keyValue></leadKey>";
    let (status, body) = call(&sandbox, &server, "getLead", by_id);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<Id>1002200</Id><Email>lead@company.com</Email>"),
        "{body}"
    );
    let owner = "<leadKey><keyType>LEADOWNEREMAIL</keyType><keyValue>o@x.com</keyValue></leadKey>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "getLead", owner)),
        20110
    );
}

#[test]
fn failures_write_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let unknown_field = "<leadRecord><Email>x@example.com</Email><leadAttributeList><attribute><attrName>Foo__c</attrName><attrValue>1</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    let answer = call(&sandbox, &server, "syncLead", unknown_field);
    assert_eq!(fault_code(&answer), 20105);
    assert!(answer.1.contains("Foo__c"), "{}", answer.1);
    let bad_value = "<leadRecord><Email>x@example.com</Email><leadAttributeList><attribute><attrName>LeadScore</attrName><attrValue>many</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "syncLead", bad_value)),
        20110
    );
    let unknown_id = "<leadRecord><Id>999</Id><leadAttributeList><attribute><attrName>FirstName</attrName><attrValue>Z</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "syncLead", unknown_id)),
        20103
    );
    let no_key = "<leadRecord><leadAttributeList><attribute><attrName>FirstName</attrName><attrValue>Z</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "syncLead", no_key)),
        20101
    );
    let foreign = "<leadRecord><ForeignSysPersonId>42</ForeignSysPersonId><ForeignSysType>CUSTOM</ForeignSysType></leadRecord><returnLead>false</returnLead>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "syncLead", foreign)),
        20110
    );
    assert!(sandbox.lead_changes().is_empty());
}

/// For each of [`Fault::ran_then_lost`] (the delay past the bridge's
/// REST timeout) on REST POSTs under `path_prefix`: the
/// SOAP call `operation` with `params` is fault 20011 saying it may have
/// been applied, and the sandbox shows `writes` changes: applied once,
/// never resent.
fn assert_ran_once_when_lost(path_prefix: &str, operation: &str, params: &str, writes: usize) {
    for fault in Fault::ran_then_lost(Duration::from_secs(3)) {
        let rule = FaultRule::always(fault.clone())
            .api(Api::Rest)
            .method("POST")
            .path_prefix(path_prefix);
        let sandbox = Sandbox::start_with(SandboxConfig::new().faults([rule])).unwrap();
        let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
        let rest = sandbox
            .rest_client_builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let server = Bridge::rest(rest, auth)
            .serve("127.0.0.1:0".parse().unwrap(), false)
            .unwrap();
        let answer = call(&sandbox, &server, operation, params);
        assert_eq!(fault_code(&answer), 20011, "{fault:?}");
        assert!(answer.1.contains("may have been applied"), "{}", answer.1);
        assert_eq!(sandbox.lead_changes().len(), writes, "{fault:?}");
    }
}

/// The sync ran, then its answer was lost: a fault that says it may have
/// been applied (and to read the lead first), applied exactly once.
#[test]
fn a_sync_whose_answer_was_lost_may_have_been_applied_and_ran_once() {
    let params = format!("{NEW_LEAD}<returnLead>true</returnLead>");
    assert_ran_once_when_lost("/rest/v1/leads.json", "syncLead", &params, 1);
    let sandbox = Sandbox::start_with(
        SandboxConfig::new().faults([FaultRule::always(Fault::ResetMidResponse)
            .api(Api::Rest)
            .method("POST")
            .path_prefix("/rest/v1/leads.json")]),
    )
    .unwrap();
    let answer = call(&sandbox, &serve(&sandbox), "syncLead", &params);
    assert!(answer.1.contains("getLead"), "{}", answer.1);
}

#[test]
fn describe_lead_record_lists_soap_names() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let (status, body) = call(
        &sandbox,
        &server,
        "describeMObject",
        "<objectName>LeadRecord</objectName>",
    );
    assert_eq!(status, 200, "{body}");
    for name in ["Id", "Email", "FirstName", "LeadScore"] {
        assert!(
            body.contains(&format!("<name>{name}</name>")),
            "{name}: {body}"
        );
    }
    // No SOAP name, not listed.
    assert!(!body.contains("<name>cookies</name>"), "{body}");
    let other = call(
        &sandbox,
        &server,
        "describeMObject",
        "<objectName>Opportunity</objectName>",
    );
    assert_eq!(fault_code(&other), 20110);
}

/// Marketo's official 2_2 WSDL, where the workspace sits beside the
/// project's shared references (not in a plain clone: the flow then runs
/// with the bridge's own WSDL only).
fn official_wsdl() -> Option<std::path::PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/mktows-2_2.wsdl");
    path.is_file().then_some(path)
}

/// Runs an unmodified SOAP client's legacy flow against the bridge, with
/// the bridge's own WSDL, then with Marketo's official 2_2 WSDL (the
/// bridge's address given to the client as the endpoint) when it is there.
fn legacy_flow(tool: &str, probe: &[&str], script: &str) {
    let required = std::env::var("MC_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    let available = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            !required,
            "{tool} is required (MC_REQUIRE_CLIENTS=1) but missing"
        );
        eprintln!("notice: skipping the {tool} legacy flow: {tool} or its SOAP library is missing");
        return;
    }
    legacy_flow_with(tool, script, None);
    match official_wsdl() {
        Some(wsdl) => legacy_flow_with(tool, script, Some(&wsdl)),
        None => eprintln!("notice: Marketo's official WSDL is not beside the workspace; the {tool} flow ran with the bridge's WSDL only"),
    }
}

fn legacy_flow_with(tool: &str, script: &str, official: Option<&Path>) {
    // Marketo's official WSDL declares getTags; so does the bridge's (both
    // answered 20012 by the bridge), but the suds script does not call it.
    let not_served = script != "lead_flow_suds.py";
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bridge_clients")
        .join(script);
    let mut command = Command::new(tool);
    command.arg(&script);
    match official {
        Some(wsdl) => command.arg(wsdl),
        None => command.arg(format!("{}?WSDL", server.endpoint())),
    };
    command
        .arg(sandbox.soap_user_id())
        .arg(sandbox.soap_encryption_key());
    if official.is_some() {
        command.arg(server.endpoint());
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{tool}: {stdout}\n{stderr}");
    for line in [
        "sync: CREATED",
        "attribute: FirstName=Ann",
        "attribute: LastName=O'Hara & Sons",
        "attribute: Company=Acme <Legacy>",
        "count: 1",
        "added: true",
        "member: true",
        "describe: FirstName",
        "campaign: true",
        "activity: AddToList Webinar Registrants",
        "activity: RequestCampaign Send Webinar Reminder",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}\n{stderr}");
    }
    if not_served {
        assert!(stdout.contains("not served: 20012"), "{stdout}\n{stderr}");
    }
    // What the database and the journal hold: created, then added to list
    // 1001 "Webinar Registrants", once.
    let changes = sandbox.lead_changes();
    assert_eq!(
        changes.iter().map(|c| c.what.as_str()).collect::<Vec<_>>(),
        ["created", "added to list 1001"],
        "{changes:?}"
    );
    let lead = sandbox.lead(changes[0].lead_id).unwrap();
    assert_eq!(lead.fields["company"], "Acme <Legacy>");
    let journal = sandbox.journal();
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0].lead_ids, [changes[0].lead_id]);
    assert_eq!(journal[0].tokens[0].value, "Migrating off SOAP");
}

#[test]
fn php_soapclient_runs_a_legacy_lead_flow_through_the_bridge() {
    legacy_flow(
        "php",
        &[
            "-r",
            "new SoapClient(null, ['location' => 'http://x', 'uri' => 'u']);",
        ],
        "lead_flow.php",
    );
}

#[test]
fn python_zeep_runs_a_legacy_lead_flow_through_the_bridge() {
    legacy_flow("python3", &["-c", "import zeep"], "lead_flow.py");
}

#[test]
fn python_suds_runs_a_legacy_lead_flow_through_the_bridge() {
    legacy_flow("python3", &["-c", "import suds"], "lead_flow_suds.py");
}

/// `listOperation` params for the list named `list`, `strict` or not.
fn list_params(operation: &str, list: &str, keys: &[(&str, &str)], strict: bool) -> String {
    let members: String = keys
        .iter()
        .map(|(t, v)| format!("<leadKey><keyType>{t}</keyType><keyValue>{v}</keyValue></leadKey>"))
        .collect();
    format!(
        "<listOperation>{operation}</listOperation><listKey><keyType>MKTOLISTNAME</keyType><keyValue>{list}</keyValue></listKey><listMemberList>{members}</listMemberList><strict>{strict}</strict>"
    )
}

#[test]
fn list_operation_adds_asks_and_removes_by_list_name() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let keys = [("EMAIL", "ANOTHERLEAD@company.com"), ("IDNUM", "1002200")];
    let add = list_params("ADDTOLIST", "Webinar Registrants", &keys, true);
    let (status, body) = call(&sandbox, &server, "listOperation", &add);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<success>true</success>"), "{body}");
    assert_eq!(body.matches("<status>true</status>").count(), 2, "{body}");
    let ask = list_params("ISMEMBEROFLIST", "Webinar Registrants", &keys, false);
    let (_, body) = call(&sandbox, &server, "listOperation", &ask);
    assert_eq!(body.matches("<status>true</status>").count(), 2, "{body}");
    let remove = list_params("REMOVEFROMLIST", "Webinar Registrants", &keys[..1], false);
    let (_, body) = call(&sandbox, &server, "listOperation", &remove);
    assert!(body.contains("<status>true</status>"), "{body}");
    let (_, body) = call(&sandbox, &server, "listOperation", &ask);
    assert!(
        body.contains(
            "<keyValue>ANOTHERLEAD@company.com</keyValue></leadKey><status>false</status>"
        ),
        "{body}"
    );
    assert!(
        body.contains("<keyValue>1002200</keyValue></leadKey><status>true</status>"),
        "{body}"
    );
    let changes: Vec<(u32, String)> = sandbox
        .lead_changes()
        .into_iter()
        .map(|c| (c.lead_id, c.what))
        .collect();
    assert_eq!(
        changes,
        [
            (1002200, "added to list 1001".to_owned()),
            (1002201, "added to list 1001".to_owned()),
            (1002201, "removed from list 1001".to_owned()),
        ]
    );
}

#[test]
fn list_operation_faults_do_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let unknown_list = list_params("ADDTOLIST", "No Such List", &[("IDNUM", "1002200")], false);
    assert_eq!(
        fault_code(&call(&sandbox, &server, "listOperation", &unknown_list)),
        20111
    );
    let strict = list_params(
        "ADDTOLIST",
        "Webinar Registrants",
        &[("IDNUM", "1002200"), ("EMAIL", "nobody@nowhere.example")],
        true,
    );
    let answer = call(&sandbox, &server, "listOperation", &strict);
    assert_eq!(fault_code(&answer), 20103);
    assert!(answer.1.contains("nobody@nowhere.example"), "{}", answer.1);
    assert!(sandbox.lead_changes().is_empty());
    // Not strict: the known lead is added, the unknown one reported false.
    let loose = strict.replace("<strict>true</strict>", "<strict>false</strict>");
    let (status, body) = call(&sandbox, &server, "listOperation", &loose);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<success>false</success>"), "{body}");
    assert!(
        body.contains(
            "<keyValue>nobody@nowhere.example</keyValue></leadKey><status>false</status>"
        ),
        "{body}"
    );
    assert_eq!(sandbox.lead_changes().len(), 1);
}

/// An ADDTOLIST that ran, then lost its answer: may have been applied,
/// applied once.
#[test]
fn a_list_add_whose_answer_was_lost_may_have_been_applied_and_ran_once() {
    let add = list_params(
        "ADDTOLIST",
        "Webinar Registrants",
        &[("IDNUM", "1002201")],
        true,
    );
    assert_ran_once_when_lost("/rest/v1/lists/", "listOperation", &add, 1);
}

#[test]
fn get_lead_activity_filters_types_and_pages() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let params = format!("{NEW_LEAD}<returnLead>false</returnLead>");
    assert_eq!(call(&sandbox, &server, "syncLead", &params).0, 200);
    let update = "<leadRecord><Email>new.lead@example.com</Email><leadAttributeList><attribute><attrName>FirstName</attrName><attrValue>Bo</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    assert_eq!(call(&sandbox, &server, "syncLead", update).0, 200);
    let key = [("EMAIL", "new.lead@example.com")];
    let add = list_params("ADDTOLIST", "Webinar Registrants", &key, true);
    assert_eq!(call(&sandbox, &server, "listOperation", &add).0, 200);
    let lead_key =
        "<leadKey><keyType>EMAIL</keyType><keyValue>new.lead@example.com</keyValue></leadKey>";
    // Every type: new lead, the first name changed, the list add.
    let (status, body) = call(&sandbox, &server, "getLeadActivity", lead_key);
    assert_eq!(status, 200, "{body}");
    let types: Vec<&str> = body
        .split("<activityType>")
        .skip(1)
        .filter_map(|s| s.split("</activityType>").next())
        .collect();
    assert_eq!(types, ["NewLead", "ChangeDataValue", "AddToList"], "{body}");
    assert!(
        body.contains("<attrName>New Value</attrName><attrValue>Bo</attrValue>"),
        "{body}"
    );
    assert!(
        body.contains("<remainingCount>0</remainingCount>"),
        "{body}"
    );
    // Excluding, and one at a time with the offset.
    let exclude = format!("{lead_key}<activityFilter><excludeTypes><activityType>NewLead</activityType></excludeTypes></activityFilter>");
    let (_, body) = call(&sandbox, &server, "getLeadActivity", &exclude);
    assert!(
        !body.contains("<activityType>NewLead</activityType>"),
        "{body}"
    );
    let first = format!("{lead_key}<batchSize>1</batchSize>");
    let (_, body) = call(&sandbox, &server, "getLeadActivity", &first);
    assert!(
        body.contains("<returnCount>1</returnCount><remainingCount>1</remainingCount>"),
        "{body}"
    );
    let offset = body
        .split("<offset>")
        .nth(1)
        .and_then(|s| s.split("</offset>").next())
        .unwrap();
    let next = format!("{lead_key}<startPosition><offset>{offset}</offset></startPosition><batchSize>5</batchSize>");
    let (_, body) = call(&sandbox, &server, "getLeadActivity", &next);
    assert!(body.contains("<returnCount>2</returnCount>"), "{body}");
    assert!(
        body.contains("<activityType>ChangeDataValue</activityType>"),
        "{body}"
    );
    let unknown =
        "<leadKey><keyType>EMAIL</keyType><keyValue>nobody@nowhere.example</keyValue></leadKey>";
    assert_eq!(
        fault_code(&call(&sandbox, &server, "getLeadActivity", unknown)),
        20103
    );
}

/// A `leadRecord` by email with one attribute.
fn record(email: &str, attr: &str, value: &str) -> String {
    format!("<leadRecord><Email>{email}</Email><leadAttributeList><attribute><attrName>{attr}</attrName><attrValue>{value}</attrValue></attribute></leadAttributeList></leadRecord>")
}

#[test]
fn sync_multiple_leads_reports_every_record() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let records = [
        record("one@new.example", "FirstName", "One"),
        record("lead@company.com", "City", "Lyon"),
        // A value REST refuses: this record fails, the others are written.
        format!("<leadRecord><Email>two@new.example</Email><leadAttributeList><attribute><attrName>FirstName</attrName><attrValue>{}</attrValue></attribute></leadAttributeList></leadRecord>", "x".repeat(300)),
        // No key at all: failed unsent.
        "<leadRecord><leadAttributeList><attribute><attrName>City</attrName><attrValue>Nice</attrValue></attribute></leadAttributeList></leadRecord>".to_owned(),
        "<leadRecord><Id>1002201</Id><leadAttributeList><attribute><attrName>Company</attrName><attrValue>Acme</attrValue></attribute></leadAttributeList></leadRecord>".to_owned(),
    ];
    let params = format!("<leadRecordList>{}</leadRecordList>", records.concat());
    let (status, body) = call(&sandbox, &server, "syncMultipleLeads", &params);
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&str> = body
        .split("<status>")
        .skip(1)
        .filter_map(|s| s.split("</status>").next())
        .collect();
    assert_eq!(
        statuses,
        ["CREATED", "UPDATED", "FAILED", "FAILED", "UPDATED"],
        "{body}"
    );
    assert!(body.contains("exceeds 255 characters"), "{body}");
    assert!(body.contains("Lead key required"), "{body}");
    let written: Vec<String> = sandbox.lead_changes().into_iter().map(|c| c.what).collect();
    assert_eq!(written, ["created", "updated", "updated"], "{written:?}");
    assert_eq!(sandbox.lead(1002200).unwrap().fields["city"], "Lyon");
    // An unknown field anywhere: 20105, nothing written.
    let unknown = format!(
        "<leadRecordList>{}{}</leadRecordList>",
        record("three@new.example", "FirstName", "T"),
        record("four@new.example", "Foo__c", "x")
    );
    assert_eq!(
        fault_code(&call(&sandbox, &server, "syncMultipleLeads", &unknown)),
        20105
    );
    assert_eq!(sandbox.lead_changes().len(), 3);
    // dedupEnabled false: an email already known creates another lead.
    let dup = format!(
        "<leadRecordList>{}</leadRecordList><dedupEnabled>false</dedupEnabled>",
        record("lead@company.com", "FirstName", "Twin")
    );
    let (_, body) = call(&sandbox, &server, "syncMultipleLeads", &dup);
    assert!(body.contains("<status>CREATED</status>"), "{body}");
}

/// A multi-record sync whose answer was lost after it ran: may have been
/// applied, applied once.
#[test]
fn a_multiple_sync_whose_answer_was_lost_ran_once() {
    let params = format!(
        "<leadRecordList>{}{}</leadRecordList>",
        record("a@new.example", "FirstName", "A"),
        record("b@new.example", "FirstName", "B")
    );
    assert_ran_once_when_lost("/rest/v1/leads.json", "syncMultipleLeads", &params, 2);
}

#[test]
fn get_multiple_leads_by_keys_and_by_list_in_batches() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let selector = |kind: &str, inner: &str| {
        format!(
            r#"<leadSelector xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns1:{kind}">{inner}</leadSelector>"#
        )
    };
    let keys = selector(
        "LeadKeySelector",
        "<keyType>EMAIL</keyType><keyValues><stringItem>lead@company.com</stringItem><stringItem>anotherlead@company.com</stringItem><stringItem>nobody@nowhere.example</stringItem></keyValues>",
    );
    let first = format!("{keys}<batchSize>1</batchSize><includeAttributes><stringItem>FirstName</stringItem></includeAttributes>");
    let (status, body) = call(&sandbox, &server, "getMultipleLeads", &first);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<returnCount>1</returnCount><remainingCount>1</remainingCount><newStreamPosition>k:1</newStreamPosition>"), "{body}");
    assert!(body.contains("<Id>1002200</Id>"), "{body}");
    let next = format!("{keys}<streamPosition>k:1</streamPosition><batchSize>5</batchSize>");
    let (_, body) = call(&sandbox, &server, "getMultipleLeads", &next);
    assert!(
        body.contains("<returnCount>1</returnCount><remainingCount>0</remainingCount>"),
        "{body}"
    );
    assert!(body.contains("<Id>1002201</Id>"), "{body}");
    // By list name: the list's members.
    let by_list = selector(
        "StaticListSelector",
        "<staticListName>Newsletter Subscribers</staticListName>",
    );
    let (status, body) = call(&sandbox, &server, "getMultipleLeads", &by_list);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<returnCount>1</returnCount>"), "{body}");
    assert!(body.contains("<Email>lead@company.com</Email>"), "{body}");
    let unknown_list = selector(
        "StaticListSelector",
        "<staticListName>No Such List</staticListName>",
    );
    assert_eq!(
        fault_code(&call(&sandbox, &server, "getMultipleLeads", &unknown_list)),
        20111
    );
    let unknown_field =
        format!("{keys}<includeAttributes><stringItem>Foo__c</stringItem></includeAttributes>");
    assert_eq!(
        fault_code(&call(&sandbox, &server, "getMultipleLeads", &unknown_field)),
        20105
    );
    // By update time: the leads created or changed since then, from
    // REST's New Lead and Change Data Value activities.
    let by_time = selector(
        "LastUpdateAtSelector",
        "<oldestUpdatedAt>2024-01-01T00:00:00Z</oldestUpdatedAt>",
    );
    let (_, body) = call(&sandbox, &server, "getMultipleLeads", &by_time);
    assert!(body.contains("<returnCount>0</returnCount>"), "{body}");
    let params = format!("{NEW_LEAD}<returnLead>false</returnLead>");
    assert_eq!(call(&sandbox, &server, "syncLead", &params).0, 200);
    let update = "<leadRecord><Id>1002201</Id><leadAttributeList><attribute><attrName>City</attrName><attrValue>Lyon</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    assert_eq!(call(&sandbox, &server, "syncLead", update).0, 200);
    let (status, body) = call(&sandbox, &server, "getMultipleLeads", &by_time);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<returnCount>2</returnCount><remainingCount>0</remainingCount>"),
        "{body}"
    );
    assert!(
        body.contains("<Email>new.lead@example.com</Email>"),
        "{body}"
    );
    assert!(
        body.contains(
            "<attrName>City</attrName><attrType>string</attrType><attrValue>Lyon</attrValue>"
        ),
        "{body}"
    );
    let before = selector(
        "LastUpdateAtSelector",
        "<latestUpdatedAt>2024-01-02T00:00:00Z</latestUpdatedAt><oldestUpdatedAt>2024-01-01T00:00:00Z</oldestUpdatedAt>",
    );
    let (_, body) = call(&sandbox, &server, "getMultipleLeads", &before);
    assert!(body.contains("<returnCount>0</returnCount>"), "{body}");
}

/// A key that names several leads (both default leads share an SFDC
/// account id): getLead answers every match with its count; a strict
/// listOperation refuses it and does nothing; getLeadActivity asks for a
/// key that names one.
#[test]
fn a_key_naming_several_leads() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let account = "<leadKey><keyType>SFDCACCOUNTID</keyType><keyValue>0015000000XyZaAAAV</keyValue></leadKey>";
    let (status, body) = call(&sandbox, &server, "getLead", account);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<count>2</count>"), "{body}");
    assert!(
        body.contains("<Id>1002200</Id>") && body.contains("<Id>1002201</Id>"),
        "{body}"
    );
    let strict = list_params(
        "ADDTOLIST",
        "Webinar Registrants",
        &[("SFDCACCOUNTID", "0015000000XyZaAAAV")],
        true,
    );
    let answer = call(&sandbox, &server, "listOperation", &strict);
    assert_eq!(fault_code(&answer), 20103);
    assert!(answer.1.contains("names 2 leads"), "{}", answer.1);
    assert_eq!(
        fault_code(&call(&sandbox, &server, "getLeadActivity", account)),
        20110
    );
    assert!(sandbox.lead_changes().is_empty());
}

#[test]
fn get_lead_changes_lists_every_leads_changes_from_a_position() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let params = format!("{NEW_LEAD}<returnLead>false</returnLead>");
    assert_eq!(call(&sandbox, &server, "syncLead", &params).0, 200);
    let update = "<leadRecord><Id>1002201</Id><leadAttributeList><attribute><attrName>City</attrName><attrValue>Lyon</attrValue></attribute></leadAttributeList></leadRecord><returnLead>false</returnLead>";
    assert_eq!(call(&sandbox, &server, "syncLead", update).0, 200);
    let start =
        "<startPosition><oldestCreatedAt>2024-01-01T00:00:00Z</oldestCreatedAt></startPosition>";
    let (status, body) = call(&sandbox, &server, "getLeadChanges", start);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<returnCount>2</returnCount>"), "{body}");
    assert!(
        body.contains("<activityType>NewLead</activityType>"),
        "{body}"
    );
    assert!(
        body.contains(
            "<activityType>ChangeDataValue</activityType><mktgAssetName>City</mktgAssetName>"
        ),
        "{body}"
    );
    assert!(
        body.contains("<mktPersonId>1002201</mktPersonId></leadChangeRecord>"),
        "{body}"
    );
    // One lead's, by a key selector; one type.
    let one = format!(
        "{start}<activityFilter><includeTypes><activityType>ChangeDataValue</activityType></includeTypes></activityFilter><leadSelector xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"ns1:LeadKeySelector\"><keyType>IDNUM</keyType><keyValues><stringItem>1002201</stringItem></keyValues></leadSelector>"
    );
    let (_, body) = call(&sandbox, &server, "getLeadChanges", &one);
    assert!(body.contains("<returnCount>1</returnCount>"), "{body}");
    assert_eq!(
        fault_code(&call(
            &sandbox,
            &server,
            "getLeadChanges",
            "<batchSize>5</batchSize>"
        )),
        20109
    );
}

/// A `mergeLeads` key list: `attribute`s of key type and value.
fn key_list(element: &str, keys: &[(&str, &str)]) -> String {
    let attributes: String = keys
        .iter()
        .map(|(t, v)| {
            format!("<attribute><attrName>{t}</attrName><attrValue>{v}</attrValue></attribute>")
        })
        .collect();
    format!("<{element}>{attributes}</{element}>")
}

#[test]
fn merge_leads_merges_once_and_faults_merge_nothing() {
    let sandbox = Sandbox::start().unwrap();
    let server = serve(&sandbox);
    let params = format!("{NEW_LEAD}<returnLead>false</returnLead>");
    assert_eq!(call(&sandbox, &server, "syncLead", &params).0, 200);
    let new_id = sandbox.lead_changes()[0].lead_id;
    let winner = key_list(
        "winningLeadKeyList",
        &[("IDNUM", "1002200"), ("EMAIL", "lead@company.com")],
    );
    // A loser no key finds: nothing merged.
    let unknown = format!(
        "{winner}<losingLeadKeyLists>{}</losingLeadKeyLists>",
        key_list("keyList", &[("EMAIL", "nobody@nowhere.example")])
    );
    assert_eq!(
        fault_code(&call(&sandbox, &server, "mergeLeads", &unknown)),
        20103
    );
    let mismatched = format!(
        "{}<losingLeadKeyLists>{}</losingLeadKeyLists>",
        key_list(
            "winningLeadKeyList",
            &[("IDNUM", "1002200"), ("EMAIL", "anotherlead@company.com")]
        ),
        key_list("keyList", &[("IDNUM", &new_id.to_string())])
    );
    assert_eq!(
        fault_code(&call(&sandbox, &server, "mergeLeads", &mismatched)),
        20103
    );
    assert_eq!(sandbox.lead_changes().len(), 1);
    let merge = format!(
        "{winner}<losingLeadKeyLists>{}</losingLeadKeyLists>",
        key_list("keyList", &[("EMAIL", "new.lead@example.com")])
    );
    let (status, body) = call(&sandbox, &server, "mergeLeads", &merge);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("<winningLeadId>1002200</winningLeadId><losingLeadIdList><integerItem>{new_id}</integerItem></losingLeadIdList><status>MERGED</status>")), "{body}");
    assert!(sandbox.lead(new_id).is_none());
    assert_eq!(sandbox.lead(1002200).unwrap().fields["firstName"], "Ann");
    // The merged lead is gone: merging again finds no loser.
    assert_eq!(
        fault_code(&call(&sandbox, &server, "mergeLeads", &merge)),
        20103
    );
}

/// A merge that ran, then lost its answer: may have been applied, once.
#[test]
fn a_merge_whose_answer_was_lost_ran_once() {
    let merge = format!(
        "{}<losingLeadKeyLists>{}</losingLeadKeyLists>",
        key_list("winningLeadKeyList", &[("IDNUM", "1002200")]),
        key_list("keyList", &[("IDNUM", "1002201")])
    );
    // Two changes: the loser merged into the winner, the winner's merge.
    assert_ran_once_when_lost("/rest/v1/leads/1002200/merge.json", "mergeLeads", &merge, 2);
}
