//! The request envelopes, written directly: the markup is fixed, so it is
//! appended as literal bytes, and only the values are escaped on the way
//! in. Byte for byte what quick-xml's per-event `Writer` wrote before
//! (`quick_xml_writer.rs`; the property tests in `envelope.rs` compare the
//! two on hostile values), at a fraction of the cost.
//!
//! It takes the domain types from its parent module (`CampaignRequest`,
//! `CampaignTarget`, `LeadKey`, `LeadKeyType`, `ProgramToken`, all public,
//! and `key_value_bytes`, a key's value as bytes) and uses no `crate::`
//! paths, so `benches/wire.rs` includes this same
//! file with `#[path]` to time the writer alone.

use std::io;

use super::{key_value_bytes, CampaignRequest, CampaignTarget, LeadKey, LeadKeyType, ProgramToken};

/// The values of `ns1:AuthenticationHeader`.
#[derive(Debug, Clone, Copy)]
pub struct AuthHeader<'a> {
    /// `mktowsUserId`.
    pub user_id: &'a str,
    /// `requestSignature`.
    pub signature: &'a str,
    /// `requestTimestamp`.
    pub timestamp: &'a str,
}

/// What a `scheduleCampaign` call carries.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleParams<'a> {
    /// `programName`.
    pub program: &'a str,
    /// `campaignName`.
    pub campaign: &'a str,
    /// `campaignRunAt`, already formatted; absent when `None`.
    pub run_at: Option<&'a str>,
    /// `programTokenList`.
    pub tokens: &'a [ProgramToken],
}

/// The XML declaration, the envelope with its two namespaces (`SOAP_ENV_NS`
/// and `MKTOWS_NS`), and the header up to the user id.
const HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">"#,
    "<SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>",
);
const AFTER_USER_ID: &str = "</mktowsUserId><requestSignature>";
const AFTER_SIGNATURE: &str = "</requestSignature><requestTimestamp>";
const AFTER_TIMESTAMP: &str =
    "</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body>";
const TAIL: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>";
/// Room for one lead key: its markup, a type, a value of 32 bytes.
const LEAD_ROOM: usize = "<leadKey><keyType></keyType><keyValue></keyValue></leadKey>".len()
    + "LEADOWNEREMAIL".len()
    + 32;

/// Whether `bytes` holds a byte [`push_escaped`] replaces. Most values hold
/// none: this finds out without a branch per byte, 16 bytes at a time (the
/// compiler makes each block a few vector compares), the last block
/// overlapping the one before; short values byte by byte.
fn needs_escaping(bytes: &[u8]) -> bool {
    let special = |b: u8| (b == b'&') | (b == b'<') | (b == b'>') | (b == b'\r');
    let any = |bytes: &[u8]| bytes.iter().fold(false, |any, &b| any | special(b));
    if bytes.len() < 16 {
        return any(bytes);
    }
    let block = |at: usize| any(&bytes[at..at + 16]);
    (0..bytes.len() / 16).any(|i| block(16 * i)) || block(bytes.len() - 16)
}

/// Appends `text` as element content: `&`, `<` and `>` as entities, and
/// `\r` as `&#13;` (so the receiver's end-of-line normalisation cannot turn
/// it into `\n`). These four are ASCII, so they never occur inside a
/// multi-byte UTF-8 sequence and the scan can go byte by byte.
pub fn push_escaped(out: &mut Vec<u8>, text: &str) {
    push_escaped_bytes(out, text.as_bytes());
}

/// [`push_escaped`] of the bytes of a `str`.
fn push_escaped_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if !needs_escaping(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut done = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let entity: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#13;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[done..i]);
        out.extend_from_slice(entity);
        done = i + 1;
    }
    out.extend_from_slice(&bytes[done..]);
}

/// An `IDNUM` key up to its value.
const IDNUM_START: &str = "<leadKey><keyType>IDNUM</keyType><keyValue>";
/// A key after its value.
const LEAD_END: &[u8] = b"</keyValue></leadKey>";

/// A `leadKey` element up to its value, in one piece per key type.
fn lead_key_start(key_type: LeadKeyType) -> &'static str {
    macro_rules! start {
        ($name:literal) => {
            concat!("<leadKey><keyType>", $name, "</keyType><keyValue>")
        };
    }
    let start = match key_type {
        LeadKeyType::Idnum => IDNUM_START,
        LeadKeyType::Cookie => start!("COOKIE"),
        LeadKeyType::Email => start!("EMAIL"),
        LeadKeyType::LeadOwnerEmail => start!("LEADOWNEREMAIL"),
        LeadKeyType::SfdcAccountId => start!("SFDCACCOUNTID"),
        LeadKeyType::SfdcContactId => start!("SFDCCONTACTID"),
        LeadKeyType::SfdcLeadId => start!("SFDCLEADID"),
        LeadKeyType::SfdcLeadOwnerId => start!("SFDCLEADOWNERID"),
        LeadKeyType::SfdcOpptyId => start!("SFDCOPPTYID"),
    };
    debug_assert!(start.contains(key_type.as_str()));
    start
}

/// Appends `n` in decimal.
fn push_u32(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The declaration, the envelope's start and the whole header, up to and
/// including `<SOAP-ENV:Body>`.
fn head(out: &mut Vec<u8>, auth: &AuthHeader<'_>) {
    out.extend_from_slice(HEAD.as_bytes());
    push_escaped(out, auth.user_id);
    out.extend_from_slice(AFTER_USER_ID.as_bytes());
    push_escaped(out, auth.signature);
    out.extend_from_slice(AFTER_SIGNATURE.as_bytes());
    push_escaped(out, auth.timestamp);
    out.extend_from_slice(AFTER_TIMESTAMP.as_bytes());
}

/// `programTokenList`, empty-element form when there are no tokens.
fn tokens(out: &mut Vec<u8>, tokens: &[ProgramToken]) {
    if tokens.is_empty() {
        out.extend_from_slice(b"<programTokenList/>");
        return;
    }
    out.extend_from_slice(b"<programTokenList>");
    for token in tokens {
        out.extend_from_slice(b"<attrib><name>");
        push_escaped(out, token.name());
        out.extend_from_slice(b"</name><value>");
        push_escaped(out, token.value());
        out.extend_from_slice(b"</value></attrib>");
    }
    out.extend_from_slice(b"</programTokenList>");
}

/// Room for the envelope's fixed parts and the header values.
fn head_and_tail_len(auth: &AuthHeader<'_>) -> usize {
    HEAD.len()
        + AFTER_USER_ID.len()
        + AFTER_SIGNATURE.len()
        + AFTER_TIMESTAMP.len()
        + TAIL.len()
        + auth.user_id.len()
        + auth.signature.len()
        + auth.timestamp.len()
}

/// Writes a complete `requestCampaign` envelope for `leads` (one chunk of
/// `request`) into `out`. Writing into memory cannot fail; the `Result`
/// keeps the signature of the quick-xml writer it replaces.
pub fn write_request_campaign(
    out: &mut Vec<u8>,
    auth: &AuthHeader<'_>,
    request: &CampaignRequest,
    leads: &[LeadKey],
) -> io::Result<()> {
    // Room for the markup and typical values (a long value grows it).
    out.reserve(head_and_tail_len(auth) + 160 + leads.len() * LEAD_ROOM);

    head(out, auth);
    out.extend_from_slice(b"<ns1:paramsRequestCampaign><source>");
    out.extend_from_slice(request.source().as_str().as_bytes());
    out.extend_from_slice(b"</source>");
    if let CampaignTarget::Id { id, .. } = request.target() {
        out.extend_from_slice(b"<campaignId>");
        push_u32(out, *id);
        out.extend_from_slice(b"</campaignId>");
    }
    out.extend_from_slice(b"<leadList>");
    for key in leads {
        match key.key_type() {
            // Digits only (LeadKey checks an IDNUM): nothing to escape, and
            // the markup's length is known here, so it is copied inline.
            LeadKeyType::Idnum => {
                out.extend_from_slice(IDNUM_START.as_bytes());
                out.extend_from_slice(key_value_bytes(key));
            }
            key_type => {
                out.extend_from_slice(lead_key_start(key_type).as_bytes());
                push_escaped_bytes(out, key_value_bytes(key));
            }
        }
        out.extend_from_slice(LEAD_END);
    }
    out.extend_from_slice(b"</leadList>");
    if let CampaignTarget::Named {
        campaign,
        program,
        tokens: list,
    } = request.target()
    {
        out.extend_from_slice(b"<programName>");
        push_escaped(out, program);
        out.extend_from_slice(b"</programName><campaignName>");
        push_escaped(out, campaign);
        out.extend_from_slice(b"</campaignName>");
        tokens(out, list);
    }
    out.extend_from_slice(b"</ns1:paramsRequestCampaign>");
    out.extend_from_slice(TAIL.as_bytes());
    Ok(())
}

/// Writes a complete `scheduleCampaign` envelope into `out` (cannot fail,
/// like [`write_request_campaign`]).
pub fn write_schedule_campaign(
    out: &mut Vec<u8>,
    auth: &AuthHeader<'_>,
    params: &ScheduleParams<'_>,
) -> io::Result<()> {
    head(out, auth);
    out.extend_from_slice(b"<ns1:paramsScheduleCampaign><programName>");
    push_escaped(out, params.program);
    out.extend_from_slice(b"</programName><campaignName>");
    push_escaped(out, params.campaign);
    out.extend_from_slice(b"</campaignName>");
    if let Some(run_at) = params.run_at {
        out.extend_from_slice(b"<campaignRunAt>");
        push_escaped(out, run_at);
        out.extend_from_slice(b"</campaignRunAt>");
    }
    tokens(out, params.tokens);
    out.extend_from_slice(b"</ns1:paramsScheduleCampaign>");
    out.extend_from_slice(TAIL.as_bytes());
    Ok(())
}
