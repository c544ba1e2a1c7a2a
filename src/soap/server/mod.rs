//! The server side of Marketo's SOAP API: read a request envelope, check
//! its `AuthenticationHeader`, write the answer.
//!
//! - [`read_envelope`] reads `requestCampaign`, `scheduleCampaign` and
//!   `getCampaignsForSource` envelopes (any other operation is named and
//!   refused) into an [`Envelope`]: the [`AuthenticationHeader`] and the
//!   [`Operation`] with its parameters, or the [`Fault`] Marketo answers.
//!   It reads XML 1.0 as a conforming parser does (references decoded, a
//!   raw CR LF or lone CR in text read as LF while `&#13;` stays CR, no
//!   DOCTYPE, bounded depth and size) without building a tree: text
//!   borrows from the request unless it had to be decoded.
//! - [`Authenticator`] checks the signature (HMAC-SHA1, constant-time
//!   compare) and the timestamp window on an injectable
//!   [`Clock`](crate::Clock): faults 20014 and 20016.
//! - [`SUCCESS_REQUEST_CAMPAIGN`], [`SUCCESS_SCHEDULE_CAMPAIGN`] and
//!   [`Fault::to_xml`] are the answers, byte for byte as the sandbox
//!   writes them; [`wsdl`] is the WSDL to serve at `<endpoint>?WSDL`.
//!
//! A whole exchange, as the sandbox serves it:
//!
//! ```
//! use marketo_campaign::soap::{read_envelope, Authenticator, Fault, Operation, SUCCESS_REQUEST_CAMPAIGN};
//! use marketo_campaign::{CampaignRequest, CampaignTarget, FixedClock, LeadKey, SoapClient};
//!
//! // What a client sends.
//! let clock = FixedClock::parse("2010-04-09T14:04:54-07:00")?;
//! let client = SoapClient::builder("https://127.0.0.1/soap/mktows/2_9",
//!     "bigcorp1_461839624B16E06BA2D663", "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66")
//!     .clock(clock)
//!     .build()?;
//! let sent = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
//! let body = client.envelope(&sent, sent.leads())?;
//!
//! // What a server does with it.
//! let auth = Authenticator::new("bigcorp1_461839624B16E06BA2D663",
//!     "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66").clock(clock);
//! let answer: Result<&str, Fault> = (|| {
//!     let envelope = read_envelope(&body)?;
//!     envelope.check_soap_action(Some("\"http://www.marketo.com/mktows/requestCampaign\""))?;
//!     auth.verify(envelope.auth())?;
//!     match envelope.into_operation()? {
//!         Operation::RequestCampaign(call) => {
//!             assert_eq!(call.to_request()?, sent);
//!             Ok(SUCCESS_REQUEST_CAMPAIGN)
//!         }
//!         _ => Err(Fault::unsupported_operation("this one")),
//!     }
//! })();
//! assert!(answer?.contains("<success>true</success>"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod read;
mod xml;

use std::fmt;

pub use auth::{Authenticator, DEFAULT_MAX_CLOCK_SKEW};
pub use read::{
    read_envelope, read_envelope_with, ActivityQuery, AuthenticationHeader, DescribeMObject,
    Envelope, GetCampaignsForSource, GetLead, GetLeadActivity, GetLeadChanges, GetMultipleLeads,
    LeadSelector, ListOperation, ListOperationType, MergeLeads, Operation, ReadLimits,
    ReceivedAttribute, ReceivedLeadKey, ReceivedLeadRecord, ReceivedToken, RequestCampaign,
    ScheduleCampaign, SyncLead, SyncMultipleLeads,
};

use super::envelope::escape_text;
use super::{MKTOWS_NS, SOAP_ENV_NS};
use crate::error::SoapCode;

/// The answer to a `requestCampaign` that ran (HTTP 200).
pub const SUCCESS_REQUEST_CAMPAIGN: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body>"#,
    "<ns1:successRequestCampaign><result><success>true</success></result></ns1:successRequestCampaign>",
    "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
);

/// The answer to a `scheduleCampaign` that was scheduled (HTTP 200).
pub const SUCCESS_SCHEDULE_CAMPAIGN: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body>"#,
    "<ns1:successScheduleCampaign><result><success>true</success></result></ns1:successScheduleCampaign>",
    "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
);

/// The content type of every SOAP answer.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// A fault as Marketo answers it (HTTP 500): a [`SoapCode`] and a message,
/// written by [`to_xml`](Fault::to_xml) with `faultcode` `SOAP-ENV:Client`,
/// `faultstring` `<code> - <message>` and
/// `detail/ns1:serviceException{name, message, code}`.
///
/// ```
/// use marketo_campaign::soap::Fault;
/// use marketo_campaign::SoapCode;
/// let fault = Fault::authentication_failed();
/// assert_eq!(fault.code(), SoapCode::AuthenticationFailed);
/// assert_eq!(fault.to_string(), "20014 - Authentication failed");
/// assert!(fault.to_xml().contains(concat!(
///     "<faultcode>SOAP-ENV:Client</faultcode><faultstring>20014 - Authentication failed</faultstring>",
///     "<detail><ns1:serviceException><name>mktServiceException</name>",
///     "<message>Authentication failed (20014)</message><code>20014</code></ns1:serviceException></detail>",
/// )));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    code: SoapCode,
    message: String,
}

impl Fault {
    /// The HTTP status a fault is sent with.
    pub const HTTP_STATUS: u16 = 500;

    /// A fault with `code` and `message` (e.g. `Campaign not found`).
    pub fn new(code: SoapCode, message: impl Into<String>) -> Self {
        Fault {
            code,
            message: message.into(),
        }
    }

    /// 20014 `Authentication failed`.
    pub fn authentication_failed() -> Self {
        Fault::new(SoapCode::AuthenticationFailed, "Authentication failed")
    }

    /// 20012 `operation <name> is not supported`.
    pub fn unsupported_operation(name: &str) -> Self {
        Fault::new(
            SoapCode::RequestNotUnderstood,
            format!("operation {name} is not supported"),
        )
    }

    /// The code.
    pub fn code(&self) -> SoapCode {
        self.code
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The fault envelope.
    pub fn to_xml(&self) -> String {
        let code = self.code.code();
        let text = escape_text(&self.message);
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
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} - {}", self.code.code(), self.message)
    }
}

impl std::error::Error for Fault {}

/// The project's WSDL (`wsdl/marketo-campaign.wsdl`): `requestCampaign`
/// and `scheduleCampaign`, with `soap:address` at a placeholder instance.
/// Serve [`wsdl`] instead, with your own address.
pub const WSDL: &str = include_str!("../../../wsdl/marketo-campaign.wsdl");

/// [`WSDL`] with `soap:address` set to `endpoint`, for answering
/// `GET <endpoint>?WSDL`: WSDL-driven clients (PHP's `SoapClient`, zeep,
/// Savon, JAX-WS) then post to `endpoint`.
///
/// ```
/// let wsdl = marketo_campaign::soap::wsdl("http://127.0.0.1:8080/soap/mktows/2_9?a=1&b=2");
/// assert!(wsdl.contains(r#"<soap:address location="http://127.0.0.1:8080/soap/mktows/2_9?a=1&amp;b=2"/>"#));
/// assert!(!wsdl.contains("123-ABC-456.mktoapi.com/soap"));
/// ```
pub fn wsdl(endpoint: &str) -> String {
    const ADDRESS: &str = "<soap:address location=\"";
    let Some(start) = WSDL.find(ADDRESS).map(|i| i + ADDRESS.len()) else {
        return WSDL.to_owned();
    };
    let end = WSDL[start..].find('"').map_or(start, |i| start + i);
    let mut out = String::with_capacity(WSDL.len() + endpoint.len());
    out.push_str(&WSDL[..start]);
    for c in endpoint.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out.push_str(&WSDL[end..]);
    out
}
