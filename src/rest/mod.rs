//! Marketo's REST API: OAuth token cache, look-ups, trigger and schedule.
//!
//! REST triggers campaigns by id for lead ids only. [`RestClient`] makes every
//! SOAP-shaped request work anyway: a campaign named by name + program is
//! looked up in `campaigns.json` (exactly one must match), and lead keys of
//! every SOAP type are looked up in `leads.json` (300 values a call).

mod activities;
mod client;
mod leads;
mod lists;
mod lookup;
pub(crate) mod token;
pub(crate) mod wire;

pub(crate) use lookup::encode;

/// The look-up before it was made fast: the bench's baseline and the
/// tests' reference; it lives with the benches.
#[cfg(any(test, feature = "bench-baseline"))]
#[path = "../../benches/baseline/rest_lookup.rs"]
mod lookup_baseline;

pub use crate::lead_fields::DOCUMENTED_FILTER_TYPES;
pub use activities::{
    Activity, ActivityPage, ActivityType, MAX_ACTIVITY_LEADS, MAX_ACTIVITY_TYPES,
};
pub use client::{RestClient, RestClientBuilder, MAX_TOKENS_PER_CALL};
pub use leads::{
    Lead, LeadField, LeadSync, SyncAction, MAX_FILTER_VALUES, MAX_MERGE_LOSERS, MAX_SYNC_RECORDS,
};
pub use lists::{ListMemberStatus, StaticList, MAX_LIST_LEADS};

/// The body of `POST /rest/v1/campaigns/{id}/trigger.json` for these lead
/// ids and tokens, exactly as [`RestClient`] sends it. For callers with
/// their own HTTP stack.
///
/// ```
/// use marketo_campaign::ProgramToken;
/// use marketo_campaign::rest::trigger_body;
/// let body = trigger_body(&[1002200], &[ProgramToken::new("{{my.A}}", "x")?])?;
/// assert_eq!(body, r#"{"input":{"leads":[{"id":1002200}],"tokens":[{"name":"{{my.A}}","value":"x"}]}}"#);
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub fn trigger_body(
    lead_ids: &[u32],
    tokens: &[crate::ProgramToken],
) -> Result<String, crate::Error> {
    if lead_ids.is_empty() || lead_ids.len() > crate::MAX_LEADS_PER_CALL {
        return Err(crate::Error::InvalidInput {
            field: "lead ids".into(),
            reason: format!(
                "{} leads; a trigger takes 1 to {}",
                lead_ids.len(),
                crate::MAX_LEADS_PER_CALL
            ),
        });
    }
    if tokens.len() > MAX_TOKENS_PER_CALL {
        return Err(crate::Error::InvalidInput {
            field: "program tokens".into(),
            reason: format!(
                "{} tokens; a trigger takes at most {MAX_TOKENS_PER_CALL}",
                tokens.len()
            ),
        });
    }
    let body = wire::TriggerBody {
        input: wire::TriggerInput {
            leads: lead_ids.iter().map(|&id| wire::LeadId { id }).collect(),
            tokens: wire::TokenRef::all(tokens),
        },
    };
    body.to_json()
        .map_err(|e| crate::Error::Config(format!("writing the trigger body: {e}")))
}

/// Reads a Marketo REST answer (any HTTP status, the body as received):
/// the `result` records of a `success:true` answer, or
/// [`Error::Rest`](crate::Error::Rest) with the first error's code.
///
/// ```
/// use marketo_campaign::rest::read_response;
/// let records = read_response(200, br#"{"requestId":"a#1","success":true,"result":[{"id":4496}]}"#)?;
/// assert_eq!(records[0]["id"], 4496);
/// let err = read_response(200, br#"{"requestId":"a#2","success":false,"errors":[{"code":"606","message":"Max rate limit"}]}"#).unwrap_err();
/// assert_eq!(err.rest_code().map(|c| c.code()), Some(606));
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
pub fn read_response(status: u16, body: &[u8]) -> Result<Vec<serde_json::Value>, crate::Error> {
    wire::read(status, body).map(|page| page.result)
}

/// The lead look-up around its HTTP calls, today's or the old one
/// (`baseline`), for `benches/wire.rs`: plans the look-ups of `leads`
/// against an endpoint of `endpoint_len` bytes, reads `answers[i]` as the
/// answer to look-up `i` and resolves every key. Returns the look-up
/// paths' total length and a digest of what each key resolved to. Not an
/// API.
#[cfg(feature = "bench-baseline")]
#[doc(hidden)]
pub fn bench_lead_lookup(
    endpoint_len: usize,
    leads: &[crate::LeadKey],
    answers: &[&[u8]],
    baseline: bool,
) -> Result<(usize, u64), crate::Error> {
    let mut digest = 0u64;
    let mut each = |ids: &[u32]| {
        digest = ids
            .iter()
            .fold(digest.wrapping_mul(31).wrapping_add(1), |d, &id| {
                d.wrapping_mul(31).wrapping_add(u64::from(id))
            });
    };
    let paths = if baseline {
        lookup_baseline::look_up(endpoint_len, leads, answers, &mut each)?
    } else {
        lookup::look_up(endpoint_len, leads, answers, &mut each)?
    };
    Ok((paths.iter().map(String::len).sum(), digest))
}

/// The identity answer reader, for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) use token::read_token_answer;
