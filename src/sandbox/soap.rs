//! The sandbox's SOAP endpoint: checks what Marketo checks, runs, journals.
//!
//! Operations: `requestCampaign` and `scheduleCampaign`. After
//! authentication every call passes the SOAP rate limit (fault 20023) and
//! concurrency limit (fault 20024).

use chrono::{DateTime, NaiveDateTime};

use crate::error::SoapCode;
use crate::request::{LeadKeyType, MAX_LEADS_PER_CALL};
use crate::sandbox::journal::{JournalEntry, JournalToken};
use crate::sandbox::limits::Refused;
use crate::sandbox::xml::{self, Element};
use crate::sandbox::State;
use crate::soap::envelope::escape_text;
use crate::soap::{verify_signature, MKTOWS_NS, SOAP_ENV_NS};

/// An HTTP answer: status and XML body.
pub(crate) type Answer = (u16, String);

/// The content type of every SOAP answer.
pub(crate) const XML: &str = "text/xml; charset=utf-8";

/// A SOAP fault as Marketo sends it (HTTP 500).
pub(crate) fn fault(code: SoapCode, text: &str) -> Answer {
    let code = code.code();
    let text = escape_text(text);
    (
        500,
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{env}" xmlns:ns1="{ns}"><SOAP-ENV:Body><SOAP-ENV:Fault>"#,
                "<faultcode>SOAP-ENV:Client</faultcode><faultstring>{code} - {text}</faultstring>",
                "<detail><ns1:serviceException><name>mktServiceException</name>",
                "<message>{text} ({code})</message><code>{code}</code>",
                "</ns1:serviceException></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
            ),
            env = SOAP_ENV_NS,
            ns = MKTOWS_NS,
            code = code,
            text = text
        ),
    )
}

pub(crate) fn success(operation: &str) -> Answer {
    (
        200,
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{env}" xmlns:ns1="{ns}"><SOAP-ENV:Body>"#,
                "<ns1:{op}><result><success>true</success></result></ns1:{op}>",
                "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
            ),
            env = SOAP_ENV_NS,
            ns = MKTOWS_NS,
            op = operation
        ),
    )
}

/// Why a request was refused: a fault code and its text.
type Refusal = (SoapCode, String);

fn not_understood(reason: impl Into<String>) -> Refusal {
    (SoapCode::RequestNotUnderstood, reason.into())
}

/// Handles one POST to the SOAP endpoint.
pub(crate) fn handle(state: &State, soap_action: Option<&str>, body: &[u8]) -> Answer {
    match process(state, soap_action, body) {
        Ok(answer) => answer,
        Err((code, text)) => {
            log::debug!("sandbox SOAP fault {}: {text}", code.code());
            fault(code, &text)
        }
    }
}

fn process(state: &State, soap_action: Option<&str>, body: &[u8]) -> Result<Answer, Refusal> {
    let root = xml::parse(body).map_err(not_understood)?;
    if !root.is(Some(SOAP_ENV_NS), "Envelope") {
        return Err(not_understood(
            "the root element is not a SOAP 1.1 Envelope",
        ));
    }
    let (header, body) = match root.children.as_slice() {
        [header, body]
            if header.is(Some(SOAP_ENV_NS), "Header") && body.is(Some(SOAP_ENV_NS), "Body") =>
        {
            (header, body)
        }
        _ => {
            return Err(not_understood(
                "the Envelope must hold a Header then a Body",
            ))
        }
    };
    let auth = header
        .children
        .iter()
        .find(|e| e.is(Some(MKTOWS_NS), "AuthenticationHeader"))
        .ok_or_else(|| not_understood("no AuthenticationHeader"))?;
    let [params] = body.children.as_slice() else {
        return Err(not_understood("the Body must hold exactly one element"));
    };
    if params.ns.as_deref() != Some(MKTOWS_NS) {
        return Err(not_understood(
            "the operation element is not in the mktows namespace",
        ));
    }
    let operation = match params.name.as_str() {
        "paramsRequestCampaign" => "requestCampaign",
        "paramsScheduleCampaign" => "scheduleCampaign",
        other => {
            return Err(not_understood(format!(
                "operation {other} is not supported"
            )))
        }
    };
    let expected_action = format!("\"http://www.marketo.com/mktows/{operation}\"");
    match soap_action {
        Some(action)
            if action == expected_action
                || action.trim_matches('"') == expected_action.trim_matches('"') => {}
        other => {
            return Err(not_understood(format!(
                "SOAPAction {other:?} does not match {expected_action}"
            )))
        }
    }
    authenticate(state, auth)?;
    let _in_flight = state.soap_limits.admit().map_err(|refused| match refused {
        Refused::Rate => (SoapCode::RateLimited, "Rate limit exceeded".to_owned()),
        Refused::Concurrency => (
            SoapCode::ConcurrencyLimited,
            "Concurrent request limit exceeded".to_owned(),
        ),
    })?;
    state.pause();
    if operation == "scheduleCampaign" {
        schedule_campaign(state, params)
    } else {
        request_campaign(state, params)
    }
}

/// Takes the children of `element` in schema order: each name of `order` at
/// most once (except `repeated`), unqualified, nothing else.
fn children_in_order<'e>(
    element: &'e Element,
    order: &[&str],
) -> Result<Vec<Option<&'e Element>>, Refusal> {
    let mut found: Vec<Option<&Element>> = vec![None; order.len()];
    let mut position = 0;
    for child in &element.children {
        if child.ns.is_some() {
            return Err(not_understood(format!(
                "{} must be unqualified in {}",
                child.name, element.name
            )));
        }
        let index = order[position..]
            .iter()
            .position(|name| *name == child.name)
            .map(|i| i + position)
            .ok_or_else(|| {
                not_understood(format!(
                    "unexpected or out-of-order element {} in {}",
                    child.name, element.name
                ))
            })?;
        found[index] = Some(child);
        position = index + 1;
    }
    if !element.text.trim().is_empty() && !element.children.is_empty() {
        return Err(not_understood(format!("stray text in {}", element.name)));
    }
    Ok(found)
}

/// The list items of `list`: every child is `item`, unqualified.
fn items<'e>(list: &'e Element, item: &str) -> Result<&'e [Element], Refusal> {
    if let Some(bad) = list.children.iter().find(|c| !c.is(None, item)) {
        return Err(not_understood(format!(
            "unexpected element {} in {}",
            bad.name, list.name
        )));
    }
    Ok(&list.children)
}

fn text_of(element: &Element) -> Result<&str, Refusal> {
    if element.children.is_empty() {
        Ok(&element.text)
    } else {
        Err(not_understood(format!("{} must hold text", element.name)))
    }
}

fn authenticate(state: &State, auth: &Element) -> Result<(), Refusal> {
    let fields = children_in_order(
        auth,
        &[
            "mktowsUserId",
            "requestSignature",
            "requestTimestamp",
            "audit",
            "mode",
        ],
    )?;
    let (Some(user), Some(signature), Some(timestamp)) = (fields[0], fields[1], fields[2]) else {
        return Err(not_understood("the AuthenticationHeader is incomplete"));
    };
    let (user, signature, timestamp) = (text_of(user)?, text_of(signature)?, text_of(timestamp)?);
    let auth_failed = || {
        (
            SoapCode::AuthenticationFailed,
            "Authentication failed".to_owned(),
        )
    };
    if user != state.data.soap_user_id
        || !verify_signature(&state.data.soap_encryption_key, timestamp, user, signature)
    {
        return Err(auth_failed());
    }
    let time = DateTime::parse_from_rfc3339(timestamp).map_err(|_| auth_failed())?;
    let skew = (state.clock.now() - time.to_utc()).abs();
    if skew > state.max_clock_skew {
        return Err((SoapCode::RequestExpired, "Request expired".to_owned()));
    }
    Ok(())
}

fn request_campaign(state: &State, params: &Element) -> Result<Answer, Refusal> {
    let fields = children_in_order(
        params,
        &[
            "source",
            "campaignId",
            "leadList",
            "programName",
            "campaignName",
            "programTokenList",
        ],
    )?;
    let [source, campaign_id, lead_list, program_name, campaign_name, token_list] = fields[..]
    else {
        return Err(not_understood("internal: field count"));
    };
    match source.map(text_of).transpose()? {
        Some("MKTOWS" | "SALES") => {}
        _ => return Err(not_understood("source must be MKTOWS or SALES")),
    }
    let bad_parameter = |text: &str| (SoapCode::BadParameter, text.to_owned());
    let campaign = match (campaign_id, program_name, campaign_name, token_list) {
        (Some(id), None, None, None) => {
            let id: u32 = text_of(id)?
                .trim()
                .parse()
                .map_err(|_| not_understood("campaignId must be an integer"))?;
            state.data.campaigns.iter().find(|c| c.id == id)
        }
        (None, Some(program), Some(name), Some(_)) => {
            let (program, name) = (text_of(program)?, text_of(name)?);
            state
                .data
                .campaigns
                .iter()
                .find(|c| c.program == program && c.name == name)
        }
        _ => {
            return Err(bad_parameter(
                "Bad parameter: pass campaignId alone, or campaignName, programName and programTokenList",
            ))
        }
    };
    let campaign = campaign
        .filter(|c| c.requestable)
        .ok_or_else(|| (SoapCode::CampaignNotFound, "Campaign not found".to_owned()))?;
    let tokens = tokens(token_list)?;
    let keys = match lead_list {
        Some(list) => items(list, "leadKey")?,
        None => &[],
    };
    if keys.is_empty() {
        return Err((SoapCode::LeadKeyRequired, "Lead key required".to_owned()));
    }
    // Marketo reads the first 100 keys and silently ignores the rest.
    let ignored_keys = keys.len().saturating_sub(MAX_LEADS_PER_CALL);
    let mut lead_ids = Vec::new();
    for key in keys.iter().take(MAX_LEADS_PER_CALL) {
        let f = children_in_order(key, &["keyType", "keyValue"])?;
        let (Some(key_type), Some(value)) = (f[0], f[1]) else {
            return Err(not_understood("leadKey needs keyType and keyValue"));
        };
        let key_type: LeadKeyType = text_of(key_type)?
            .parse()
            .map_err(|_| not_understood("unknown keyType"))?;
        let value = text_of(value)?;
        let lead_id = state.find_lead(key_type, value).ok_or_else(|| {
            (
                SoapCode::LeadNotFound,
                format!("Lead not found: {key_type}:{value}"),
            )
        })?;
        if !lead_ids.contains(&lead_id) {
            lead_ids.push(lead_id);
        }
    }
    state.journal.record(JournalEntry {
        api: "soap".into(),
        campaign_id: campaign.id,
        lead_ids,
        tokens,
        ignored_keys,
        run_at: None,
    });
    Ok(success("successRequestCampaign"))
}

/// The `attrib`s of a `programTokenList`, if there is one.
fn tokens(token_list: Option<&Element>) -> Result<Vec<JournalToken>, Refusal> {
    let Some(list) = token_list else {
        return Ok(Vec::new());
    };
    items(list, "attrib")?
        .iter()
        .map(|attrib| {
            let f = children_in_order(attrib, &["name", "value"])?;
            match (f[0], f[1]) {
                (Some(name), Some(value)) => Ok(JournalToken {
                    name: text_of(name)?.to_owned(),
                    value: text_of(value)?.to_owned(),
                }),
                _ => Err(not_understood("attrib needs name and value")),
            }
        })
        .collect()
}

/// An `xs:dateTime`: RFC 3339, or without a zone.
fn valid_date_time(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text).is_ok()
        || NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

fn schedule_campaign(state: &State, params: &Element) -> Result<Answer, Refusal> {
    let fields = children_in_order(
        params,
        &[
            "programName",
            "campaignName",
            "campaignRunAt",
            "programTokenList",
        ],
    )?;
    let [program_name, campaign_name, run_at, token_list] = fields[..] else {
        return Err(not_understood("internal: field count"));
    };
    let required = |name: &str| {
        (
            SoapCode::ParameterRequired,
            format!("Parameter required: {name}"),
        )
    };
    let program = text_of(program_name.ok_or_else(|| required("programName"))?)?;
    let name = text_of(campaign_name.ok_or_else(|| required("campaignName"))?)?;
    // An empty (or xsi:nil) campaignRunAt means "now", as an absent one.
    let run_at = match run_at {
        Some(element) => text_of(element)?.trim().to_owned(),
        None => String::new(),
    };
    if !run_at.is_empty() && !valid_date_time(&run_at) {
        return Err((
            SoapCode::BadParameter,
            format!("Bad parameter: campaignRunAt {run_at:?} is not an xs:dateTime"),
        ));
    }
    let tokens = tokens(token_list)?;
    let campaign = state
        .data
        .campaigns
        .iter()
        .find(|c| c.program == program && c.name == name)
        .ok_or_else(|| (SoapCode::CampaignNotFound, "Campaign not found".to_owned()))?;
    if campaign.requestable {
        return Err((
            SoapCode::CampaignNotFound,
            format!("Campaign '{}' is not a batch campaign", campaign.name),
        ));
    }
    state.journal.record(JournalEntry {
        api: "soap".into(),
        campaign_id: campaign.id,
        lead_ids: Vec::new(),
        tokens,
        ignored_keys: 0,
        run_at: Some(run_at),
    });
    Ok(success("successScheduleCampaign"))
}
