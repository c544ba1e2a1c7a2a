//! Marketo's REST API: OAuth token cache, look-ups, trigger and schedule.
//!
//! REST triggers campaigns by id for lead ids only. [`RestClient`] makes every
//! SOAP-shaped request work anyway: a campaign named by name + program is
//! looked up in `campaigns.json` (exactly one must match), and lead keys of
//! every SOAP type are looked up in `leads.json` (300 values a call).

mod client;
mod lookup;
mod token;
pub(crate) mod wire;

pub use client::{RestClient, RestClientBuilder, MAX_TOKENS_PER_CALL};
