//! The server-side SOAP codec (`marketo_campaign::soap::{read_envelope,
//! Authenticator, Fault, …}`) on its own and behind the sandbox: XML 1.0's
//! end-of-line rules seen in the journal, signatures and timestamps,
//! Marketo's fault bytes, every envelope the client writes read back into
//! the same request, and the WSDL served at `?WSDL`.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use marketo_campaign::soap::{
    read_envelope, read_envelope_with, request_signature, w3c_timestamp, Authenticator, Fault,
    Operation, ReadLimits, RequestCampaign, DEFAULT_TIMEZONE, SUCCESS_REQUEST_CAMPAIGN,
    SUCCESS_SCHEDULE_CAMPAIGN,
};
use marketo_campaign::{
    CampaignRequest, CampaignTarget, Clock, FixedClock, LeadKey, LeadKeyType, ProgramToken,
    SoapClient, SoapCode, Source, SystemClock,
};
use marketo_sandbox::{
    Api, Fault as SandboxFault, FaultRule, JournalToken, Sandbox, SandboxConfig,
};
use proptest::collection::vec;
use proptest::prelude::*;

const USER: &str = "bigcorp1_461839624B16E06BA2D663";
const KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";
const TIMESTAMP: &str = "2010-04-09T14:04:54-07:00";
const SIGNATURE: &str = "ffbff4d4bef354807481e66dc7540f7890523a87";

const OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">"#;

/// An envelope with this header and `ns1:<element>` holding `params`.
fn envelope(user: &str, signature: &str, timestamp: &str, element: &str, params: &str) -> String {
    format!(
        "{OPEN}<SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>{user}</mktowsUserId>\
         <requestSignature>{signature}</requestSignature><requestTimestamp>{timestamp}</requestTimestamp>\
         </ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:{element}>{params}</ns1:{element}>\
         </SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

/// The published vector's envelope around `params`.
fn vector_envelope(element: &str, params: &str) -> String {
    envelope(USER, SIGNATURE, TIMESTAMP, element, params)
}

fn vector_auth() -> Authenticator {
    Authenticator::new(USER, KEY).clock(FixedClock::parse(TIMESTAMP).unwrap())
}

fn request_campaign(body: &[u8]) -> RequestCampaign<'_> {
    match read_envelope(body).unwrap().into_operation() {
        Ok(Operation::RequestCampaign(call)) => call,
        other => panic!("not a requestCampaign: {other:?}"),
    }
}

/// Posts `params` as `ns1:paramsRequestCampaign`, signed now for the sandbox.
fn post_signed(sandbox: &Sandbox, key: &str, params: &str) -> (u16, String) {
    let timestamp = w3c_timestamp(SystemClock.now(), DEFAULT_TIMEZONE);
    let signature = request_signature(key, &timestamp, sandbox.soap_user_id());
    let body = envelope(
        sandbox.soap_user_id(),
        &signature,
        &timestamp,
        "paramsRequestCampaign",
        params,
    );
    crate::post_request_campaign(&sandbox.soap_endpoint(), body)
}

// ------------------------------------------------------- XML 1.0 line ends

#[test]
fn line_ends_reach_the_journal_as_xml_1_0_reads_them() {
    let sandbox = Sandbox::start().unwrap();
    // suds sends a CR raw; JAX-WS writes it as &#13;.
    let cases = [
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\r\rb\r", "a\n\nb\n"),
        ("a&#13;b", "a\rb"),
        ("a&#13;\nb", "a\r\nb"),
        ("a&#xD;&#xA;b", "a\r\nb"),
        ("<![CDATA[a\r\nb]]>", "a\nb"),
        ("a\r<![CDATA[\nb]]>", "a\nb"),
    ];
    for (sent, _) in cases {
        let params = format!(
            "<source>MKTOWS</source><leadList><leadKey><keyType>IDNUM</keyType><keyValue>1002200</keyValue></leadKey></leadList>\
             <programName>Webinars</programName><campaignName>Send Webinar Reminder</campaignName>\
             <programTokenList><attrib><name>{{{{my.WebinarTitle}}}}</name><value>{sent}</value></attrib></programTokenList>"
        );
        let (status, body) = post_signed(&sandbox, sandbox.soap_encryption_key(), &params);
        assert_eq!(status, 200, "{sent:?}: {body}");
    }
    let journaled: Vec<String> = sandbox
        .journal()
        .into_iter()
        .map(|entry| entry.tokens[0].value.clone())
        .collect();
    let expected: Vec<&str> = cases.iter().map(|(_, read)| *read).collect();
    assert_eq!(journaled, expected);
}

#[test]
fn the_client_writes_cr_so_that_it_survives() {
    // The client escapes CR as &#13;: a CR LF value crosses the wire whole.
    let sandbox = Sandbox::start().unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [ProgramToken::new("{{my.WebinarTitle}}", "line 1\r\nline 2\rend").unwrap()],
        ),
        [LeadKey::id(1002200).unwrap()],
    )
    .unwrap();
    use marketo_campaign::CampaignRequester;
    sandbox
        .soap_client()
        .unwrap()
        .request_campaign(&request)
        .unwrap();
    assert_eq!(
        sandbox.journal()[0].tokens,
        [JournalToken {
            name: "{{my.WebinarTitle}}".into(),
            value: "line 1\r\nline 2\rend".into()
        }]
    );
}

// ------------------------------------------------- signatures and windows

#[test]
fn the_published_vector_verifies() {
    let body = vector_envelope("paramsRequestCampaign", "");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    assert_eq!(envelope.auth().user_id(), USER);
    assert_eq!(envelope.auth().signature(), SIGNATURE);
    assert_eq!(envelope.auth().timestamp(), TIMESTAMP);
    assert_eq!(envelope.auth().audit(), None);
    assert!(!format!("{:?}", envelope.auth()).contains(SIGNATURE));
    vector_auth().verify(envelope.auth()).unwrap();
    // Upper-case hex is the same signature.
    let upper = envelope_auth_with(USER, &SIGNATURE.to_ascii_uppercase(), TIMESTAMP);
    assert_eq!(upper, Ok(()));
}

/// What the vector's authenticator says of this header.
fn envelope_auth_with(user: &str, signature: &str, timestamp: &str) -> Result<(), SoapCode> {
    let body = envelope(user, signature, timestamp, "paramsRequestCampaign", "");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    vector_auth()
        .verify(envelope.auth())
        .map_err(|fault| fault.code())
}

#[test]
fn a_wrong_signature_is_20014() {
    let failed = Err(SoapCode::AuthenticationFailed);
    // One digit off, too short, too long, not hex, empty.
    for signature in [
        "ffbff4d4bef354807481e66dc7540f7890523a88",
        "ffbff4d4bef354807481e66dc7540f7890523a8",
        "ffbff4d4bef354807481e66dc7540f7890523a8700",
        "zzbff4d4bef354807481e66dc7540f7890523a87",
        "",
    ] {
        assert_eq!(
            envelope_auth_with(USER, signature, TIMESTAMP),
            failed,
            "{signature}"
        );
    }
    // The right signature for another user id, or another timestamp.
    assert_eq!(envelope_auth_with("bigcorp2", SIGNATURE, TIMESTAMP), failed);
    assert_eq!(
        envelope_auth_with(USER, SIGNATURE, "2010-04-09T14:04:55-07:00"),
        failed
    );
    // A signed timestamp that is not W3C.
    let odd = "2010-04-09 14:04:54";
    assert_eq!(
        envelope_auth_with(USER, &request_signature(KEY, odd, USER), odd),
        failed
    );
    // Another user's key does not open this user.
    let body = vector_envelope("paramsRequestCampaign", "");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    let other = Authenticator::new("someone", KEY).user(USER, "another key");
    assert_eq!(
        other.verify(envelope.auth()).unwrap_err(),
        Fault::authentication_failed()
    );
    // Several users: each with its own key.
    let both = Authenticator::new("someone", "k")
        .user(USER, KEY)
        .clock(FixedClock::parse(TIMESTAMP).unwrap());
    assert!(both.verify(envelope.auth()).is_ok());
    assert!(!format!("{both:?}").contains(KEY));
}

#[test]
fn the_window_is_15_minutes_either_way_and_configurable() {
    let body = vector_envelope("paramsRequestCampaign", "");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    let signed = Utc.with_ymd_and_hms(2010, 4, 9, 21, 4, 54).unwrap();
    let at = |seconds: i64| {
        Authenticator::new(USER, KEY)
            .clock(FixedClock(signed + chrono::Duration::seconds(seconds)))
            .verify(envelope.auth())
            .map_err(|fault| fault.code())
    };
    for fresh in [0, 900, -900, 899, -899] {
        assert_eq!(at(fresh), Ok(()), "{fresh}");
    }
    for stale in [901, -901, 86_400, -86_400] {
        assert_eq!(at(stale), Err(SoapCode::RequestExpired), "{stale}");
    }
    let strict = Authenticator::new(USER, KEY)
        .max_clock_skew(Duration::from_secs(60))
        .clock(FixedClock(signed + chrono::Duration::seconds(61)));
    assert_eq!(
        strict.verify(envelope.auth()).unwrap_err().code(),
        SoapCode::RequestExpired
    );
}

#[test]
fn faults_are_shaped_as_marketo_shapes_them() {
    let prefix = r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode>"#;
    let suffix =
        "</ns1:serviceException></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>";
    assert_eq!(
        Fault::authentication_failed().to_xml(),
        format!(
            "{prefix}<faultstring>20014 - Authentication failed</faultstring><detail><ns1:serviceException>\
             <name>mktServiceException</name><message>Authentication failed (20014)</message><code>20014</code>{suffix}"
        )
    );
    let body = vector_envelope("paramsRequestCampaign", "");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    let stale = Authenticator::new(USER, KEY)
        .clock(FixedClock::parse("2010-04-10T14:04:54-07:00").unwrap())
        .verify(envelope.auth())
        .unwrap_err();
    assert_eq!(
        stale.to_xml(),
        format!(
            "{prefix}<faultstring>20016 - Request expired</faultstring><detail><ns1:serviceException>\
             <name>mktServiceException</name><message>Request expired (20016)</message><code>20016</code>{suffix}"
        )
    );
    assert_eq!(Fault::HTTP_STATUS, 500);
    // Messages are escaped.
    let fault = Fault::new(SoapCode::LeadNotFound, "Lead not found: COOKIE:<a&b>\r");
    assert!(fault.to_xml().contains(
        "<faultstring>20103 - Lead not found: COOKIE:&lt;a&amp;b&gt;&#13;</faultstring>"
    ));
    // The success answers, byte for byte.
    assert_eq!(
        SUCCESS_REQUEST_CAMPAIGN,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">"#,
            "<SOAP-ENV:Body><ns1:successRequestCampaign><result><success>true</success></result></ns1:successRequestCampaign>",
            "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
        )
    );
    assert_eq!(
        SUCCESS_SCHEDULE_CAMPAIGN,
        SUCCESS_REQUEST_CAMPAIGN.replace("successRequestCampaign", "successScheduleCampaign")
    );
}

#[test]
fn the_sandbox_authenticates_before_it_reads_parameters() {
    let sandbox = Sandbox::start().unwrap();
    // Parameters out of the schema's order, signed with a wrong key: 20014,
    // not 20012: an unauthenticated caller learns nothing of them.
    let bad = "<campaignId>4496</campaignId><source>MKTOWS</source>";
    let (status, body) = post_signed(&sandbox, "wrong key", bad);
    assert_eq!(status, 500);
    assert!(body.contains("<code>20014</code>"), "{body}");
    let (status, body) = post_signed(&sandbox, sandbox.soap_encryption_key(), bad);
    assert_eq!(status, 500);
    assert!(body.contains("<code>20012</code>"), "{body}");
    assert!(body.contains("out-of-order element source"), "{body}");
    assert!(sandbox.journal().is_empty());
}

// ------------------------------------------------------ reading parameters

#[test]
fn lead_keys_past_the_100th_are_counted_not_read() {
    let keys: String = (1..=103)
        .map(|i| format!("<leadKey><keyType>idnum</keyType><keyValue>{i}</keyValue></leadKey>"))
        .collect();
    // Past the 100th, a key's content is not read (Marketo ignores it).
    let keys = keys + "<leadKey><keyType>NOPE</keyType></leadKey>";
    let body = vector_envelope(
        "paramsRequestCampaign",
        &format!(
            "<source>SALES</source><campaignId> 4496 </campaignId><leadList>{keys}</leadList>"
        ),
    );
    let call = request_campaign(body.as_bytes());
    assert_eq!(call.lead_keys().len(), 100);
    assert_eq!(call.ignored_keys(), 4);
    assert_eq!(call.lead_keys()[99].value(), "100");
    assert_eq!(call.lead_keys()[0].key_type(), LeadKeyType::Idnum);
    let request = call.to_request().unwrap();
    assert_eq!(request.source(), Source::Sales);
    assert_eq!(request.target(), &CampaignTarget::id(4496));
    assert_eq!(request.leads().len(), 100);
}

/// The fault `to_request` gives for these parameters.
fn to_request_fault(params: &str) -> Fault {
    let body = vector_envelope("paramsRequestCampaign", params);
    request_campaign(body.as_bytes()).to_request().unwrap_err()
}

/// The fault reading gives for these parameters (read, then refused).
fn read_fault(element: &str, params: &str) -> Fault {
    let body = vector_envelope(element, params);
    let envelope = read_envelope(body.as_bytes()).expect("the envelope reads");
    envelope.into_operation().unwrap_err()
}

const LEAD: &str =
    "<leadList><leadKey><keyType>EMAIL</keyType><keyValue>a@b.c</keyValue></leadKey></leadList>";

#[test]
fn each_problem_gets_marketo_s_code() {
    let cases: &[(&str, u32, &str)] = &[
        ("<campaignId>1</campaignId>", 20012, "source must be MKTOWS or SALES"),
        ("<source>mktows</source><campaignId>1</campaignId>", 20012, "source"),
        ("<source>MKTOWS</source>", 20110, "Bad parameter: pass campaignId alone"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><programTokenList/>", 20110, "Bad parameter"),
        ("<source>MKTOWS</source><campaignId>x</campaignId>", 20012, "campaignId must be an integer"),
        ("<source>MKTOWS</source><campaignId>-1</campaignId>", 20012, "campaignId must be an integer"),
        ("<campaignId>1</campaignId><source>MKTOWS</source>", 20012, "out-of-order element source"),
        ("<source>MKTOWS</source><source>MKTOWS</source>", 20012, "out-of-order element source"),
        ("<ns1:source>MKTOWS</ns1:source>", 20012, "source must be unqualified"),
        ("<source>MKTOWS</source><bogus/>", 20012, "unexpected or out-of-order element bogus"),
        ("text<source>MKTOWS</source>", 20012, "stray text in paramsRequestCampaign"),
        ("<source><b/>MKTOWS</source>", 20012, "source must hold text"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList><lead/></leadList>", 20012, "unexpected element lead in leadList"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList><leadKey><keyValue>1</keyValue></leadKey></leadList>", 20012, "leadKey needs keyType and keyValue"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList><leadKey><keyType>PHONE</keyType><keyValue>1</keyValue></leadKey></leadList>", 20012, "unknown keyType"),
        ("<source>MKTOWS</source><leadList/><programName>P</programName><campaignName>C</campaignName><programTokenList><attrib><name>{{my.A}}</name></attrib></programTokenList>", 20012, "attrib needs name and value"),
    ];
    for (params, code, text) in cases {
        let fault = read_fault("paramsRequestCampaign", params);
        assert_eq!(fault.code().code(), *code, "{params}: {fault}");
        assert!(fault.message().contains(text), "{params}: {fault}");
    }
    // Read, then refused by the domain's rules.
    let named = |tokens: &str| {
        format!("<source>MKTOWS</source>{LEAD}<programName>P</programName><campaignName>C</campaignName><programTokenList>{tokens}</programTokenList>")
    };
    let cases: &[(String, u32, &str)] = &[
        ("<source>MKTOWS</source><campaignId>1</campaignId>".into(), 20101, "Lead key required"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList/>".into(), 20101, "Lead key required"),
        (format!("<source>MKTOWS</source><campaignId>0</campaignId>{LEAD}"), 20113, "Campaign not found"),
        (format!("<source>MKTOWS</source><campaignId>3000000000</campaignId>{LEAD}"), 20113, "Campaign not found"),
        (format!("<source>MKTOWS</source>{LEAD}<programName> </programName><campaignName>C</campaignName><programTokenList/>"), 20113, "Campaign not found"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList><leadKey><keyType>IDNUM</keyType><keyValue>abc</keyValue></leadKey></leadList>".into(), 20103, "Lead not found: IDNUM:abc"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList><leadKey><keyType>IDNUM</keyType><keyValue>007</keyValue></leadKey></leadList>".into(), 20103, "Lead not found: IDNUM:007"),
        ("<source>MKTOWS</source><campaignId>1</campaignId><leadList><leadKey><keyType>EMAIL</keyType><keyValue> </keyValue></leadKey></leadList>".into(), 20103, "Lead not found: EMAIL: "),
        (named("<attrib><name>Title</name><value>v</value></attrib>"), 20110, "Bad parameter: token \"Title\""),
        (named("<attrib><name>{{my.A}}</name><value>1</value></attrib><attrib><name>{{my.A}}</name><value>2</value></attrib>"), 20110, "given twice"),
    ];
    for (params, code, text) in cases {
        let fault = to_request_fault(params);
        assert_eq!(fault.code().code(), *code, "{params}: {fault}");
        assert!(fault.message().contains(text), "{params}: {fault}");
    }
    // A huge bad key is not quoted whole.
    let huge = "x".repeat(10_000);
    let fault = to_request_fault(&format!(
        "<source>MKTOWS</source><campaignId>1</campaignId><leadList><leadKey><keyType>IDNUM</keyType><keyValue>{huge}</keyValue></leadKey></leadList>"
    ));
    assert!(fault.message().len() < 200, "{}", fault.message().len());
}

#[test]
fn schedule_and_get_campaigns_for_source_are_read() {
    let body = vector_envelope(
        "paramsScheduleCampaign",
        "<programName>Newsletters</programName><campaignName>Monthly &amp; more</campaignName>\
         <campaignRunAt> 2026-12-01T01:00:00-08:00 </campaignRunAt>\
         <programTokenList><attrib><name>{{my.Month}}</name><value>Dec</value></attrib></programTokenList>",
    );
    let Ok(Operation::ScheduleCampaign(schedule)) =
        read_envelope(body.as_bytes()).unwrap().into_operation()
    else {
        panic!("not a scheduleCampaign");
    };
    assert_eq!(schedule.program_name(), "Newsletters");
    assert_eq!(schedule.campaign_name(), "Monthly & more");
    assert_eq!(schedule.run_at(), Some("2026-12-01T01:00:00-08:00"));
    assert_eq!(
        schedule.program_tokens().unwrap(),
        [ProgramToken::new("{{my.Month}}", "Dec").unwrap()]
    );
    for (params, code, text) in [
        ("<programName>N</programName>", 20109, "Parameter required: campaignName"),
        ("<campaignName>C</campaignName>", 20109, "Parameter required: programName"),
        ("<programName>N</programName><campaignName>C</campaignName><campaignRunAt>soon</campaignRunAt>", 20110, "campaignRunAt"),
        ("<campaignName>C</campaignName><programName>N</programName>", 20012, "out-of-order"),
    ] {
        let fault = read_fault("paramsScheduleCampaign", params);
        assert_eq!(fault.code().code(), code, "{params}: {fault}");
        assert!(fault.message().contains(text), "{params}: {fault}");
    }

    let body = vector_envelope(
        "paramsGetCampaignsForSource",
        "<source>MKTOWS</source><name>Webinar</name><exactName>false</exactName>",
    );
    let envelope = read_envelope(body.as_bytes()).unwrap();
    assert_eq!(envelope.operation_name(), "getCampaignsForSource");
    assert!(envelope
        .check_soap_action(Some("http://www.marketo.com/mktows/getCampaignsForSource"))
        .is_ok());
    let Ok(Operation::GetCampaignsForSource(get)) = envelope.into_operation() else {
        panic!("not a getCampaignsForSource");
    };
    assert_eq!(
        (get.source(), get.name(), get.exact_name()),
        (Source::Mktows, Some("Webinar"), Some(false))
    );
    let body = vector_envelope("paramsGetCampaignsForSource", "<source>SALES</source>");
    let Ok(Operation::GetCampaignsForSource(get)) =
        read_envelope(body.as_bytes()).unwrap().into_operation()
    else {
        panic!("not a getCampaignsForSource");
    };
    assert_eq!(
        (get.source(), get.name(), get.exact_name()),
        (Source::Sales, None, None)
    );
    for params in [
        "<name>x</name>",
        "<source>MKTOWS</source><exactName>maybe</exactName>",
    ] {
        let fault = read_fault("paramsGetCampaignsForSource", params);
        assert_eq!(fault.code(), SoapCode::RequestNotUnderstood, "{params}");
    }
}

#[test]
fn other_operations_are_named_and_refused() {
    let body = vector_envelope("paramsListMObjects", "<objectName>x</objectName>");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    assert_eq!(envelope.operation_name(), "listMObjects");
    let fault = envelope.operation().unwrap_err();
    assert_eq!(fault.code(), SoapCode::RequestNotUnderstood);
    assert_eq!(fault.message(), "operation listMObjects is not supported");
    // The sandbox's SOAP endpoint serves neither it nor
    // getCampaignsForSource (the bridge serves the latter over REST).
    let sandbox = Sandbox::start().unwrap();
    for operation in ["listMObjects", "getCampaignsForSource"] {
        let element = format!(
            "params{}{}",
            operation[..1].to_ascii_uppercase(),
            &operation[1..]
        );
        let body = vector_envelope(&element, "<source>MKTOWS</source>");
        let mut response = test_support::http::agent()
            .post(sandbox.soap_endpoint())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header(
                "SOAPAction",
                format!("http://www.marketo.com/mktows/{operation}"),
            )
            .send(body.as_bytes())
            .unwrap();
        assert_eq!(response.status().as_u16(), 500);
        let text = response.body_mut().read_to_string().unwrap();
        assert!(
            text.contains(&format!("20012 - operation {operation} is not supported")),
            "{text}"
        );
    }
}

#[test]
fn the_soap_action_must_name_the_operation() {
    let body = vector_envelope("paramsRequestCampaign", "");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    for good in [
        "\"http://www.marketo.com/mktows/requestCampaign\"",
        "http://www.marketo.com/mktows/requestCampaign",
    ] {
        assert!(envelope.check_soap_action(Some(good)).is_ok(), "{good}");
    }
    for bad in [
        None,
        Some(""),
        Some("\"http://www.marketo.com/mktows/scheduleCampaign\""),
        Some("requestCampaign"),
    ] {
        let fault = envelope.check_soap_action(bad).unwrap_err();
        assert_eq!(fault.code(), SoapCode::RequestNotUnderstood);
        assert!(fault
            .message()
            .contains("does not match \"http://www.marketo.com/mktows/requestCampaign\""));
    }
}

#[test]
fn envelopes_other_clients_write_are_read() {
    // Default namespace on the body, another prefix, white space, comments,
    // a header entry of another kind, attributes, a BOM, CDATA.
    let body = "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
        <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\r\n\
          <soap:Header>\r\n\
            <ctx:MktowsContextHeader xmlns:ctx=\"http://www.marketo.com/mktows/\"><targetWorkspace>w</targetWorkspace></ctx:MktowsContextHeader>\r\n\
            <m:AuthenticationHeader xmlns:m=\"http://www.marketo.com/mktows/\" soap:mustUnderstand=\"1\">\r\n\
              <mktowsUserId>u</mktowsUserId>\r\n\
              <requestSignature>s</requestSignature>\r\n\
              <requestTimestamp>t</requestTimestamp>\r\n\
              <audit>a</audit><mode>1</mode>\r\n\
            </m:AuthenticationHeader>\r\n\
          </soap:Header>\r\n\
          <soap:Body>\r\n\
            <!-- a comment -->\r\n\
            <paramsRequestCampaign xmlns=\"http://www.marketo.com/mktows/\"><source xmlns=\"\">MKTOWS</source>\r\n\
              <campaignId xmlns=\"\" xsi:type=\"xs:int\">4496</campaignId>\r\n\
              <p:leadList xmlns:p=\"\" xmlns=\"\" >\r\n\
              </p:leadList>\r\n\
            </paramsRequestCampaign>\r\n\
          </soap:Body>\r\n\
        </soap:Envelope>\r\n";
    // `p:` bound to "" is not allowed by Namespaces in XML: refused.
    assert_eq!(
        read_envelope(body.as_bytes()).unwrap_err().code(),
        SoapCode::RequestNotUnderstood
    );
    let body = body.replace("<p:leadList xmlns:p=\"\" xmlns=\"\" >", "<leadList xmlns=\"\" >").replace("</p:leadList>", "<leadKey><keyType>EMAIL</keyType><keyValue><![CDATA[lead@company.com]]></keyValue></leadKey></leadList>");
    let envelope = read_envelope(body.as_bytes()).unwrap();
    assert_eq!(envelope.auth().audit(), Some("a"));
    assert_eq!(envelope.auth().mode(), Some("1"));
    let Ok(Operation::RequestCampaign(call)) = envelope.into_operation() else {
        panic!("not read");
    };
    assert_eq!(call.campaign_id(), Some(4496));
    assert_eq!(call.lead_keys()[0].value(), "lead@company.com");
}

#[test]
fn hostile_and_huge_inputs_are_refused_safely() {
    for body in [
        &b""[..],
        b"\xff\xfe<\x00",
        b"<a/>",
        b"<SOAP-ENV:Envelope/>",
        br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"/>"#,
        br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>"#,
        br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Header/><e:Body/></e:Envelope>"#,
    ] {
        let fault = read_envelope(body).unwrap_err();
        assert_eq!(fault.code(), SoapCode::RequestNotUnderstood, "{body:?}");
    }
    let mut limits = ReadLimits::default();
    limits.max_bytes = 100;
    let body = vector_envelope("paramsRequestCampaign", "");
    assert!(read_envelope_with(body.as_bytes(), &limits)
        .unwrap_err()
        .message()
        .contains("larger than 100 bytes"));
    // No AuthenticationHeader; two bodies; a DOCTYPE.
    let no_auth = body.replace("ns1:AuthenticationHeader", "ns1:Other");
    assert!(read_envelope(no_auth.as_bytes())
        .unwrap_err()
        .message()
        .contains("no AuthenticationHeader"));
    let two = body.replace("</SOAP-ENV:Body>", "</SOAP-ENV:Body><SOAP-ENV:Body/>");
    assert!(read_envelope(two.as_bytes())
        .unwrap_err()
        .message()
        .contains("Header then a Body"));
    let doctype = body.replacen("<SOAP-ENV:Envelope", "<!DOCTYPE x><SOAP-ENV:Envelope", 1);
    assert!(read_envelope(doctype.as_bytes())
        .unwrap_err()
        .message()
        .contains("DOCTYPE"));
}

// --------------------------------------------------------------- round trip

fn key_type() -> impl Strategy<Value = LeadKeyType> {
    prop::sample::select(LeadKeyType::ALL.to_vec())
}

/// Requests of hostile values, as the domain accepts them.
fn request() -> impl Strategy<Value = CampaignRequest> {
    let lead = key_type().prop_flat_map(|t| {
        let value = if t == LeadKeyType::Idnum {
            (1u32..=i32::MAX as u32).prop_map(|n| n.to_string()).boxed()
        } else {
            test_support::hostile().boxed()
        };
        (Just(t), value)
    });
    (
        prop::option::weighted(0.3, 1u32..=i32::MAX as u32),
        test_support::hostile(),
        test_support::hostile(),
        vec((test_support::token_name(), test_support::hostile()), 0..4),
        vec(lead, 1..40),
        any::<bool>(),
    )
        .prop_filter_map(
            "valid for the domain",
            |(id, campaign, program, tokens, leads, sales)| {
                let tokens: Vec<ProgramToken> = tokens
                    .into_iter()
                    .filter_map(|(name, value)| ProgramToken::new(name, value).ok())
                    .collect();
                let leads: Vec<LeadKey> = leads
                    .into_iter()
                    .filter_map(|(t, v)| LeadKey::new(t, v).ok())
                    .collect();
                let target = match id {
                    Some(id) => CampaignTarget::id(id),
                    None => CampaignTarget::named(campaign, program, tokens),
                };
                let source = if sales { Source::Sales } else { Source::Mktows };
                CampaignRequest::new(target, leads)
                    .ok()
                    .map(|r| r.with_source(source))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every envelope the client writes reads back into an equal request,
    /// signed so that the authenticator accepts it.
    #[test]
    fn every_envelope_the_client_writes_reads_back(request in request()) {
        let clock = FixedClock::parse(TIMESTAMP).unwrap();
        let client = SoapClient::builder("http://127.0.0.1:9/soap/mktows/2_9", USER, KEY)
            .clock(clock)
            .build()
            .unwrap();
        let body = client.envelope(&request, request.leads()).unwrap();
        let envelope = read_envelope(&body).map_err(|f| TestCaseError::fail(f.to_string()))?;
        prop_assert!(envelope.check_soap_action(Some(marketo_campaign::soap::SOAP_ACTION_REQUEST_CAMPAIGN)).is_ok());
        prop_assert!(Authenticator::new(USER, KEY).clock(clock).verify(envelope.auth()).is_ok());
        let Ok(Operation::RequestCampaign(call)) = envelope.into_operation() else {
            return Err(TestCaseError::fail("not read as a requestCampaign"));
        };
        prop_assert_eq!(call.ignored_keys(), 0);
        prop_assert_eq!(call.to_request().map_err(|f| TestCaseError::fail(f.to_string()))?, request);
    }

    /// Any bytes: a fault or an envelope, never a panic.
    #[test]
    fn any_bytes_are_read_or_refused(body in vec(any::<u8>(), 0..400)) {
        if let Ok(envelope) = read_envelope(&body) {
            let _ = envelope.into_operation().map(|op| match op {
                Operation::RequestCampaign(call) => call.to_request().is_ok(),
                _ => false,
            });
        }
    }

    /// Mutated envelopes: a fault or an envelope, never a panic.
    #[test]
    fn mutated_envelopes_are_read_or_refused(edits in test_support::edits()) {
        let mut body = vector_envelope(
            "paramsRequestCampaign",
            &format!("<source>MKTOWS</source>{LEAD}<programName>P</programName><campaignName>C&amp;D</campaignName><programTokenList><attrib><name>{{{{my.A}}}}</name><value>a&#13;\r\nb</value></attrib></programTokenList>"),
        )
        .into_bytes();
        test_support::mutate(&mut body, &edits, test_support::XML_SPLICES, 48);
        if let Ok(envelope) = read_envelope(&body) {
            let _ = vector_auth().verify(envelope.auth());
            if let Ok(Operation::RequestCampaign(call)) = envelope.into_operation() {
                let _ = call.to_request();
            }
        }
    }
}

// ---------------------------------------------------------------------- WSDL

fn get(url: &str, host: Option<&str>) -> (u16, String, String) {
    let mut request = test_support::http::agent().get(url);
    if let Some(host) = host {
        request = request.header("Host", host);
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.body_mut().read_to_string().unwrap(),
    )
}

/// The `location` of the WSDL's `soap:address`.
fn soap_address(wsdl: &str) -> &str {
    let start = wsdl
        .find("<soap:address location=\"")
        .expect("a soap:address")
        + 24;
    let end = start + wsdl[start..].find('"').unwrap();
    &wsdl[start..end]
}

/// Whether `xml` is well-formed (quick-xml, ending at EOF with every
/// element closed).
fn well_formed(xml: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => return depth == 0,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

#[test]
fn the_wsdl_is_served_at_the_endpoint_with_its_address() {
    let sandbox = Sandbox::start().unwrap();
    for query in ["WSDL", "wsdl", "Wsdl", "wsdl=1", "WSDL&x=y"] {
        let (status, content_type, wsdl) =
            get(&format!("{}?{query}", sandbox.soap_endpoint()), None);
        assert_eq!(status, 200, "{query}");
        assert_eq!(content_type, "text/xml; charset=utf-8");
        assert_eq!(soap_address(&wsdl), sandbox.soap_endpoint(), "{query}");
        assert_eq!(wsdl, marketo_campaign::soap::wsdl(&sandbox.soap_endpoint()));
        assert!(well_formed(&wsdl));
        assert!(wsdl.contains(r#"<wsdl:operation name="requestCampaign">"#));
    }
    // The address follows the Host the client used.
    let port = sandbox.soap_addr().port();
    let (_, _, wsdl) = get(
        &format!("{}?WSDL", sandbox.soap_endpoint()),
        Some(&format!("localhost:{port}")),
    );
    assert_eq!(
        soap_address(&wsdl),
        format!("http://localhost:{port}/soap/mktows/2_9")
    );
    // A Host that is not a plain host name: the bound address instead.
    let (_, _, wsdl) = get(
        &format!("{}?WSDL", sandbox.soap_endpoint()),
        Some("evil\"><x a=\""),
    );
    assert_eq!(soap_address(&wsdl), sandbox.soap_endpoint());
    // Without the query: still no GET on the endpoint.
    assert_eq!(get(&sandbox.soap_endpoint(), None).0, 404);
    assert_eq!(
        get(&format!("{}?wsdlx", sandbox.soap_endpoint()), None).0,
        404
    );
    assert!(sandbox.journal().is_empty());
}

#[test]
fn a_wsdl_fetch_is_not_a_soap_call() {
    // SOAP on its own port; the first SOAP call fails with 20011. Fetching
    // the WSDL first neither counts as that call nor is faulted.
    let sandbox = Sandbox::start_with(
        SandboxConfig::new()
            .soap_listen("127.0.0.1:0".parse().unwrap())
            .faults([FaultRule::on_call(SandboxFault::SoapFault(20011), 1).api(Api::Soap)]),
    )
    .unwrap();
    let (status, _, wsdl) = get(&format!("{}?WSDL", sandbox.soap_endpoint()), None);
    assert_eq!(status, 200);
    assert_eq!(soap_address(&wsdl), sandbox.soap_endpoint());
    assert!(sandbox.fault_log().is_empty());
    let (status, body) = post_signed(
        &sandbox,
        sandbox.soap_encryption_key(),
        &format!(
            "<source>MKTOWS</source><campaignId>4496</campaignId>{}",
            LEAD.replace("a@b.c", "lead@company.com")
        ),
    );
    assert_eq!(status, 500);
    assert!(body.contains("<code>20011</code>"), "{body}");
    assert_eq!(sandbox.fault_log()[0].call, 1);
    // A retired SOAP API has no WSDL either.
    sandbox.retire_soap(Some(410));
    assert_eq!(
        get(&format!("{}?WSDL", sandbox.soap_endpoint()), None).0,
        410
    );
}

#[test]
fn read_limits_default_to_the_sandbox_s() {
    let limits = ReadLimits::default();
    assert_eq!(
        (limits.max_bytes, limits.max_depth, limits.max_elements),
        (4 << 20, 16, 20_000)
    );
}
