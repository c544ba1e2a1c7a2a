//! Marketo's SOAP API: signature, envelope writer, response reader, client.
//!
//! The wire format follows Marketo's WSDL (`wsdl/marketo-campaign.wsdl` in
//! this crate), document/literal, namespace `http://www.marketo.com/mktows/`.

mod client;
pub(crate) mod envelope;
pub(crate) mod response;
mod signature;

pub use client::{
    SoapClient, SoapClientBuilder, DEFAULT_TIMEZONE, SOAP_ACTION_REQUEST_CAMPAIGN,
    SOAP_ACTION_SCHEDULE_CAMPAIGN,
};
pub use envelope::{MKTOWS_NS, SOAP_ENV_NS};
pub(crate) use signature::verify_signature;
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
