//! Marketo's SOAP API: signature, envelope writer, response reader, client,
//! and the server side (read an envelope, verify it, write the answer).
//!
//! The wire format follows Marketo's WSDL (`wsdl/marketo-campaign.wsdl` in
//! this crate, [`WSDL`]), document/literal, namespace
//! `http://www.marketo.com/mktows/`.
//!
//! # Server side
//!
//! For a server that speaks Marketo's SOAP API (the sandbox, a SOAP→REST
//! bridge): [`read_envelope`] reads a request into an [`Envelope`] — its
//! [`AuthenticationHeader`] and its [`Operation`] (`requestCampaign`,
//! `scheduleCampaign`, `getCampaignsForSource`) — or a [`Fault`];
//! [`Authenticator`] checks the signature and timestamp (faults 20014,
//! 20016); [`SUCCESS_REQUEST_CAMPAIGN`], [`SUCCESS_SCHEDULE_CAMPAIGN`] and
//! [`Fault::to_xml`] are the answers; [`wsdl`] is the WSDL to serve at
//! `<endpoint>?WSDL`.
//!
//! ```
//! use marketo_campaign::soap::{read_envelope, Authenticator, Fault, Operation, SUCCESS_REQUEST_CAMPAIGN};
//!
//! /// The answer to one POST: the body to send with HTTP 200, or the fault
//! /// to send with HTTP 500.
//! fn serve(auth: &Authenticator, soap_action: Option<&str>, body: &[u8]) -> Result<&'static str, Fault> {
//!     let envelope = read_envelope(body)?;
//!     envelope.check_soap_action(soap_action)?;
//!     auth.verify(envelope.auth())?;
//!     match envelope.into_operation()? {
//!         Operation::RequestCampaign(call) => {
//!             let request = call.to_request()?; // a validated CampaignRequest
//!             let _ = request; // ... run it ...
//!             Ok(SUCCESS_REQUEST_CAMPAIGN)
//!         }
//!         _ => Err(Fault::unsupported_operation("this one")),
//!     }
//! }
//! ```

mod client;
pub(crate) mod envelope;
pub(crate) mod response;
mod server;
mod signature;

pub use client::{
    SoapClient, SoapClientBuilder, DEFAULT_TIMEZONE, SOAP_ACTION_REQUEST_CAMPAIGN,
    SOAP_ACTION_SCHEDULE_CAMPAIGN,
};
pub use envelope::{escape_text, MKTOWS_NS, SOAP_ENV_NS};
pub use server::{
    read_envelope, read_envelope_with, wsdl, ActivityQuery, AuthenticationHeader, Authenticator,
    DescribeMObject, Envelope, Fault, GetCampaignsForSource, GetLead, GetLeadActivity,
    GetLeadChanges, GetMultipleLeads, LeadSelector, ListOperation, ListOperationType, MergeLeads,
    Operation, ReadLimits, ReceivedAttribute, ReceivedLeadKey, ReceivedLeadRecord, ReceivedToken,
    RequestCampaign, ScheduleCampaign, SyncLead, SyncMultipleLeads, CONTENT_TYPE,
    DEFAULT_MAX_CLOCK_SKEW, SUCCESS_REQUEST_CAMPAIGN, SUCCESS_SCHEDULE_CAMPAIGN, WSDL,
};
pub use signature::{request_signature, w3c_timestamp};

/// Reads Marketo's answer to `requestCampaign` (any HTTP status, the body as
/// received): `Ok` only for `successRequestCampaign/result/success = true`;
/// a fault becomes [`Error::SoapFault`](crate::Error::SoapFault) with its
/// code; anything else an error that keeps the start of the body. For
/// callers with their own HTTP stack.
///
/// ```
/// use marketo_campaign::soap::read_request_campaign_response;
/// let fault = br#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>20014 - Authentication failed</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
/// let err = read_request_campaign_response(500, fault).unwrap_err();
/// assert_eq!(err.soap_code().map(|c| c.code()), Some(20014));
/// ```
pub fn read_request_campaign_response(status: u16, body: &[u8]) -> Result<(), crate::Error> {
    response::read_response(status, body, "successRequestCampaign")
}
