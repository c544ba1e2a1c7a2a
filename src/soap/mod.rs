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
