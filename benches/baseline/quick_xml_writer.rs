//! The envelope writer as it was before the direct writer (quick-xml's
//! per-event `Writer`), kept verbatim as the reference: `envelope.rs`'s
//! property tests hold the direct writer to these bytes for every input,
//! and `benches/wire.rs` times it as the baseline.
//!
//! Compiled only for tests (and included by the bench with `#[path]`): it
//! takes every type from its parent module (`AuthHeader`, `ScheduleParams`,
//! `CampaignRequest`, `CampaignTarget`, `LeadKey`, `ProgramToken`), so it
//! uses no `crate::` paths.

use std::borrow::Cow;
use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::{AuthHeader, CampaignRequest, CampaignTarget, LeadKey, ProgramToken, ScheduleParams};

/// The SOAP 1.1 envelope namespace.
const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Marketo's mktows namespace.
const MKTOWS_NS: &str = "http://www.marketo.com/mktows/";

/// Escapes element text: `&`, `<`, `>`, and `\r` (as `&#13;`, so that the
/// receiving parser's end-of-line normalisation cannot change the value).
pub fn escape_text(s: &str) -> Cow<'_, str> {
    let needs = |b: &u8| matches!(b, b'&' | b'<' | b'>' | b'\r');
    let Some(first) = s.bytes().position(|b| needs(&b)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

struct Xml<'w>(Writer<&'w mut Vec<u8>>);

impl Xml<'_> {
    fn start(&mut self, name: &str) -> io::Result<()> {
        self.0.write_event(Event::Start(BytesStart::new(name)))
    }

    fn end(&mut self, name: &str) -> io::Result<()> {
        self.0.write_event(Event::End(BytesEnd::new(name)))
    }

    fn text_element(&mut self, name: &str, text: &str) -> io::Result<()> {
        self.start(name)?;
        self.0
            .write_event(Event::Text(BytesText::from_escaped(escape_text(text))))?;
        self.end(name)
    }

    fn envelope(
        &mut self,
        auth: &AuthHeader<'_>,
        body: impl FnOnce(&mut Self) -> io::Result<()>,
    ) -> io::Result<()> {
        self.0
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let envelope = BytesStart::new("SOAP-ENV:Envelope")
            .with_attributes([("xmlns:SOAP-ENV", SOAP_ENV_NS), ("xmlns:ns1", MKTOWS_NS)]);
        self.0.write_event(Event::Start(envelope))?;
        self.start("SOAP-ENV:Header")?;
        self.start("ns1:AuthenticationHeader")?;
        self.text_element("mktowsUserId", auth.user_id)?;
        self.text_element("requestSignature", auth.signature)?;
        self.text_element("requestTimestamp", auth.timestamp)?;
        self.end("ns1:AuthenticationHeader")?;
        self.end("SOAP-ENV:Header")?;
        self.start("SOAP-ENV:Body")?;
        body(self)?;
        self.end("SOAP-ENV:Body")?;
        self.end("SOAP-ENV:Envelope")
    }

    fn tokens(&mut self, tokens: &[ProgramToken]) -> io::Result<()> {
        if tokens.is_empty() {
            return self
                .0
                .write_event(Event::Empty(BytesStart::new("programTokenList")));
        }
        self.start("programTokenList")?;
        for token in tokens {
            self.start("attrib")?;
            self.text_element("name", token.name())?;
            self.text_element("value", token.value())?;
            self.end("attrib")?;
        }
        self.end("programTokenList")
    }
}

/// Writes a complete `requestCampaign` envelope for `leads` (one chunk of
/// `request`) into `out`.
pub fn write_request_campaign(
    out: &mut Vec<u8>,
    auth: &AuthHeader<'_>,
    request: &CampaignRequest,
    leads: &[LeadKey],
) -> io::Result<()> {
    let mut xml = Xml(Writer::new(out));
    xml.envelope(auth, |xml| {
        xml.start("ns1:paramsRequestCampaign")?;
        xml.text_element("source", request.source().as_str())?;
        if let CampaignTarget::Id { id, .. } = request.target() {
            xml.text_element("campaignId", &id.to_string())?;
        }
        xml.start("leadList")?;
        for key in leads {
            xml.start("leadKey")?;
            xml.text_element("keyType", key.key_type().as_str())?;
            xml.text_element("keyValue", key.value())?;
            xml.end("leadKey")?;
        }
        xml.end("leadList")?;
        if let CampaignTarget::Named {
            campaign,
            program,
            tokens,
        } = request.target()
        {
            xml.text_element("programName", program)?;
            xml.text_element("campaignName", campaign)?;
            xml.tokens(tokens)?;
        }
        xml.end("ns1:paramsRequestCampaign")
    })
}

/// Writes a complete `scheduleCampaign` envelope into `out`.
pub fn write_schedule_campaign(
    out: &mut Vec<u8>,
    auth: &AuthHeader<'_>,
    params: &ScheduleParams<'_>,
) -> io::Result<()> {
    let mut xml = Xml(Writer::new(out));
    xml.envelope(auth, |xml| {
        xml.start("ns1:paramsScheduleCampaign")?;
        xml.text_element("programName", params.program)?;
        xml.text_element("campaignName", params.campaign)?;
        if let Some(run_at) = params.run_at {
            xml.text_element("campaignRunAt", run_at)?;
        }
        xml.tokens(params.tokens)?;
        xml.end("ns1:paramsScheduleCampaign")
    })
}
