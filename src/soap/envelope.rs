//! The request envelope writer.
//!
//! Prefixes follow Marketo's documentation: `SOAP-ENV` for the envelope,
//! `ns1` for `http://www.marketo.com/mktows/`. The WSDL declares no
//! `elementFormDefault`, so the children of `ns1:AuthenticationHeader` and
//! `ns1:paramsRequestCampaign` are unqualified, in schema order.
//!
//! The envelopes are written directly as bytes (`envelope/write.rs`);
//! quick-xml's per-event `Writer`, which wrote them before, stays as the
//! test reference (`benches/baseline/quick_xml_writer.rs`, with the bench
//! that times it) that the direct writer must match byte for byte.

use std::borrow::Cow;

// The writer's domain types: `write.rs` takes them from this module, so that
// the bench can include it with the crate's public types instead.
use crate::request::{CampaignRequest, CampaignTarget, LeadKey, LeadKeyType, ProgramToken};

/// A key's value as the writer copies it: its bytes, not checked again as
/// a `str` (`benches/wire.rs`, which has only the public API, gives
/// `value().as_bytes()`).
fn key_value_bytes(key: &LeadKey) -> &[u8] {
    key.value_bytes()
}

#[cfg(test)]
#[path = "../../benches/baseline/quick_xml_writer.rs"]
mod quick_xml_writer;
mod write;

pub(crate) use write::{
    write_request_campaign, write_schedule_campaign, AuthHeader, ScheduleParams,
};

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Marketo's mktows namespace.
pub const MKTOWS_NS: &str = "http://www.marketo.com/mktows/";

/// Escapes element text: `&`, `<`, `>`, and `\r` (as `&#13;`, so that the
/// receiving parser's end-of-line normalisation cannot change the value).
/// For servers writing their own SOAP answers (the bridge does).
///
/// ```
/// use marketo_campaign::soap::escape_text;
/// assert_eq!(escape_text("a<b>&\rc"), "a&lt;b&gt;&amp;&#13;c");
/// ```
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

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: AuthHeader<'static> = AuthHeader {
        user_id: "bigcorp1_461839624B16E06BA2D663",
        signature: "ffbff4d4bef354807481e66dc7540f7890523a87",
        timestamp: "2010-04-09T14:04:54-07:00",
    };

    fn write(request: &CampaignRequest) -> String {
        let mut out = Vec::new();
        write_request_campaign(&mut out, &AUTH, request, request.leads()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn by_id_envelope_is_exact() {
        let request = CampaignRequest::new(
            CampaignTarget::id(4496),
            [LeadKey::email("lead@company.com").unwrap()],
        )
        .unwrap();
        assert_eq!(
            write(&request),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">"#,
                "<SOAP-ENV:Header><ns1:AuthenticationHeader>",
                "<mktowsUserId>bigcorp1_461839624B16E06BA2D663</mktowsUserId>",
                "<requestSignature>ffbff4d4bef354807481e66dc7540f7890523a87</requestSignature>",
                "<requestTimestamp>2010-04-09T14:04:54-07:00</requestTimestamp>",
                "</ns1:AuthenticationHeader></SOAP-ENV:Header>",
                "<SOAP-ENV:Body><ns1:paramsRequestCampaign>",
                "<source>MKTOWS</source><campaignId>4496</campaignId>",
                "<leadList><leadKey><keyType>EMAIL</keyType><keyValue>lead@company.com</keyValue></leadKey></leadList>",
                "</ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"
            )
        );
    }

    #[test]
    fn named_envelope_keeps_schema_order_and_escapes() {
        let request = CampaignRequest::new(
            CampaignTarget::named(
                "Send <Webinar> & \"Reminder\"",
                "Webinars",
                [ProgramToken::new("{{my.JoinLink}}", "https://x/?a=1&b=2\r\n").unwrap()],
            ),
            [LeadKey::email("o'brien+é@company.com").unwrap()],
        )
        .unwrap();
        let xml = write(&request);
        let body = xml.split("<SOAP-ENV:Body>").nth(1).unwrap();
        assert_eq!(
            body,
            concat!(
                "<ns1:paramsRequestCampaign><source>MKTOWS</source>",
                "<leadList><leadKey><keyType>EMAIL</keyType><keyValue>o'brien+é@company.com</keyValue></leadKey></leadList>",
                "<programName>Webinars</programName>",
                "<campaignName>Send &lt;Webinar&gt; &amp; \"Reminder\"</campaignName>",
                "<programTokenList><attrib><name>{{my.JoinLink}}</name><value>https://x/?a=1&amp;b=2&#13;\n</value></attrib></programTokenList>",
                "</ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"
            )
        );
    }

    #[test]
    fn empty_token_list_is_present() {
        let request = CampaignRequest::new(
            CampaignTarget::named("C", "P", []),
            [LeadKey::id(1).unwrap()],
        )
        .unwrap();
        assert!(write(&request).contains(
            "<campaignName>C</campaignName><programTokenList/></ns1:paramsRequestCampaign>"
        ));
    }

    #[test]
    fn schedule_envelope() {
        let tokens = [ProgramToken::new("{{my.Month}}", "Dec").unwrap()];
        let mut out = Vec::new();
        write_schedule_campaign(
            &mut out,
            &AUTH,
            &ScheduleParams {
                program: "Newsletters",
                campaign: "Monthly Newsletter",
                run_at: Some("2026-12-01T01:00:00-08:00"),
                tokens: &tokens,
            },
        )
        .unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(xml.contains(concat!(
            "<SOAP-ENV:Body><ns1:paramsScheduleCampaign><programName>Newsletters</programName>",
            "<campaignName>Monthly Newsletter</campaignName><campaignRunAt>2026-12-01T01:00:00-08:00</campaignRunAt>",
            "<programTokenList><attrib><name>{{my.Month}}</name><value>Dec</value></attrib></programTokenList>",
            "</ns1:paramsScheduleCampaign></SOAP-ENV:Body>"
        )));
    }

    #[test]
    fn escape_borrows_clean_text() {
        assert!(matches!(escape_text("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_text("a<b>&\rc"), "a&lt;b&gt;&amp;&#13;c");
    }
}

/// Property tests: escaping is lossless, and no value can change the
/// envelope's structure.
#[cfg(test)]
mod proptests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    use super::*;
    use crate::request::LeadKeyType;

    const FRAGMENTS: &[&str] = &[
        "<",
        ">",
        "&",
        "\"",
        "'",
        "]]>",
        "</keyValue><keyValue>",
        "</name><value>",
        "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
        "<!ENTITY lol \"lol\">",
        "&amp;",
        "&#13;",
        "\r\n",
        "\r",
        "\n",
        "\t",
        " ",
        "\u{85}",
        "\u{2028}",
        "\u{D7FF}",
        "\u{E000}",
        "\u{FFFD}",
        "\u{10FFFF}",
        "\u{1F600}",
    ];

    fn is_xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    }

    /// Hostile strings of XML 1.0 characters (the only ones a validated
    /// request holds).
    fn xml_string() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            2 => any::<char>().prop_filter("XML Char", |c| is_xml_char(*c)).prop_map(String::from),
            2 => "[a-z0-9@.]{1,6}",
        ];
        vec(piece, 0..12).prop_map(|p| p.concat())
    }

    /// The text of an escaped string, as an XML reader sees it.
    fn unescaped(escaped: &str) -> String {
        let doc = format!("<a>{escaped}</a>");
        let mut reader = Reader::from_str(&doc);
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Text(t) => text.push_str(&t.unescape().unwrap()),
                Event::Eof => break,
                Event::Start(_) | Event::End(_) => {}
                other => panic!("unexpected event {other:?} in {doc:?}"),
            }
        }
        text
    }

    /// The envelope's events with text replaced by a marker: its structure.
    fn structure(xml: &[u8]) -> Vec<String> {
        let mut reader = Reader::from_reader(xml);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let event = reader.read_event_into(&mut buf).expect("well-formed");
            out.push(match event {
                Event::Start(e) => format!("<{}>", String::from_utf8_lossy(e.name().as_ref())),
                Event::End(e) => format!("</{}>", String::from_utf8_lossy(e.name().as_ref())),
                Event::Empty(e) => format!("<{}/>", String::from_utf8_lossy(e.name().as_ref())),
                // Text is content, not structure (and absent when empty).
                Event::Text(_) => {
                    buf.clear();
                    continue;
                }
                Event::Decl(_) => "decl".to_owned(),
                Event::Eof => break,
                other => panic!("unexpected event {other:?}"),
            });
            buf.clear();
        }
        out
    }

    const AUTH: AuthHeader<'static> = AuthHeader {
        user_id: "bigcorp1_461839624B16E06BA2D663",
        signature: "ffbff4d4bef354807481e66dc7540f7890523a87",
        timestamp: "2010-04-09T14:04:54-07:00",
    };

    fn request(
        campaign: &str,
        program: &str,
        tokens: &[(String, String)],
        leads: &[String],
    ) -> Option<CampaignRequest> {
        let tokens: Vec<ProgramToken> = tokens
            .iter()
            .enumerate()
            .map(|(i, (name, value))| {
                ProgramToken::new(
                    format!("{{{{my.{i}{}}}}}", name.replace(['{', '}'], "")),
                    format!("v{value}"),
                )
            })
            .collect::<Result<_, _>>()
            .ok()?;
        let leads: Vec<LeadKey> = leads
            .iter()
            .map(|v| LeadKey::new(LeadKeyType::Cookie, format!("c{v}")))
            .collect::<Result<_, _>>()
            .ok()?;
        CampaignRequest::new(
            CampaignTarget::named(format!("c{campaign}"), format!("p{program}"), tokens),
            leads,
        )
        .ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn escaping_is_lossless_and_inert(s in xml_string()) {
            let escaped = escape_text(&s);
            prop_assert!(!escaped.contains(['<', '\r']));
            prop_assert!(!escaped.contains("]]>"));
            // Every `&` starts one of the references the writer emits.
            for (i, _) in escaped.match_indices('&') {
                let rest = &escaped[i..];
                prop_assert!(
                    ["&amp;", "&lt;", "&gt;", "&#13;"].iter().any(|r| rest.starts_with(r)),
                    "{}", rest
                );
            }
            prop_assert_eq!(matches!(escaped, Cow::Borrowed(_)), !s.contains(['&', '<', '>', '\r']));
            prop_assert_eq!(unescaped(&escaped), s);
        }

        /// Values of the same shape give envelopes of the same structure:
        /// nothing in a value becomes markup.
        #[test]
        fn values_never_change_the_envelope_structure(
            a in (xml_string(), xml_string(), vec((xml_string(), xml_string()), 3), vec(xml_string(), 3)),
            b in (xml_string(), xml_string(), vec((xml_string(), xml_string()), 3), vec(xml_string(), 3)),
        ) {
            let (Some(ra), Some(rb)) = (request(&a.0, &a.1, &a.2, &a.3), request(&b.0, &b.1, &b.2, &b.3)) else {
                return Ok(());
            };
            let (mut xa, mut xb) = (Vec::new(), Vec::new());
            write_request_campaign(&mut xa, &AUTH, &ra, ra.leads()).unwrap();
            write_request_campaign(&mut xb, &AUTH, &rb, rb.leads()).unwrap();
            prop_assert_eq!(structure(&xa), structure(&xb));
            let tokens: Vec<ProgramToken> = ra.target().tokens().to_vec();
            let (mut sa, mut sb) = (Vec::new(), Vec::new());
            let params = |program, campaign, run_at| ScheduleParams { program, campaign, run_at, tokens: &tokens };
            write_schedule_campaign(&mut sa, &AUTH, &params(&a.0, &a.1, Some(&b.0))).unwrap();
            write_schedule_campaign(&mut sb, &AUTH, &params(&b.1, &b.0, Some(&a.1))).unwrap();
            prop_assert_eq!(structure(&sa), structure(&sb));
        }
    }
}

/// The direct writer against the quick-xml `Writer` it replaced: the same
/// bytes for every input, hostile values included.
#[cfg(test)]
mod same_bytes_as_quick_xml {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::quick_xml_writer as reference;
    use super::*;
    use crate::request::Source;
    use test_support::{hostile, xml_piece};

    /// Text a validated request can hold: XML 1.0 characters, hostile ones
    /// included, now and then very long.
    fn xml_value() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => vec(xml_piece(), 0..10).prop_map(|p| p.concat()),
            1 => vec(xml_piece(), 1..4).prop_map(|p| test_support::long(&p.concat())),
        ]
    }

    fn target() -> impl Strategy<Value = CampaignTarget> {
        let tokens = vec((xml_value(), xml_value()), 0..4).prop_map(|pairs| {
            pairs
                .into_iter()
                .enumerate()
                .filter_map(|(i, (name, value))| {
                    let inner: String = name
                        .chars()
                        .filter(|c| !matches!(c, '{' | '}') && !c.is_control())
                        .collect();
                    ProgramToken::new(format!("{{{{my.T{i}{inner}}}}}"), value).ok()
                })
                .collect::<Vec<_>>()
        });
        prop_oneof![
            (1..=i32::MAX as u32).prop_map(CampaignTarget::id),
            (xml_value(), xml_value(), tokens).prop_map(|(campaign, program, tokens)| {
                CampaignTarget::named(format!("c{campaign}"), format!("p{program}"), tokens)
            }),
        ]
    }

    fn request() -> impl Strategy<Value = CampaignRequest> {
        let key = (0..LeadKeyType::ALL.len(), xml_value(), 1..=i32::MAX as u32).prop_map(
            |(t, value, id)| match LeadKeyType::ALL[t] {
                LeadKeyType::Idnum => LeadKey::id(id),
                other => LeadKey::new(other, value).or_else(|_| LeadKey::id(id)),
            },
        );
        (target(), vec(key, 0..12), any::<bool>()).prop_map(|(target, keys, sales)| {
            let mut leads: Vec<LeadKey> = keys.into_iter().filter_map(Result::ok).collect();
            if leads.is_empty() {
                leads.push(LeadKey::id(1).unwrap());
            }
            let source = if sales { Source::Sales } else { Source::Mktows };
            CampaignRequest::new(target, leads)
                .expect("generated targets and leads are valid")
                .with_source(source)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn request_campaign_bytes_are_identical(
            auth in (hostile(), hostile(), hostile()),
            request in request(),
            skip in 0usize..3,
        ) {
            let auth = AuthHeader { user_id: &auth.0, signature: &auth.1, timestamp: &auth.2 };
            let leads = &request.leads()[skip.min(request.leads().len() - 1)..];
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_request_campaign(&mut ours, &auth, &request, leads).unwrap();
            reference::write_request_campaign(&mut theirs, &auth, &request, leads).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }

        #[test]
        fn schedule_campaign_bytes_are_identical(
            auth in (hostile(), hostile(), hostile()),
            names in (hostile(), hostile(), proptest::option::of(hostile())),
            target in target(),
        ) {
            let auth = AuthHeader { user_id: &auth.0, signature: &auth.1, timestamp: &auth.2 };
            let params = ScheduleParams {
                program: &names.0,
                campaign: &names.1,
                run_at: names.2.as_deref(),
                tokens: target.tokens(),
            };
            // Starting with some bytes in the buffer: both append.
            let (mut ours, mut theirs) = (b"x".to_vec(), b"x".to_vec());
            write_schedule_campaign(&mut ours, &auth, &params).unwrap();
            reference::write_schedule_campaign(&mut theirs, &auth, &params).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }

        #[test]
        fn escaping_is_identical(s in hostile()) {
            let mut ours = Vec::new();
            write::push_escaped(&mut ours, &s);
            prop_assert_eq!(&String::from_utf8(ours).unwrap(), &reference::escape_text(&s));
            prop_assert_eq!(escape_text(&s), reference::escape_text(&s));
        }
    }

    /// Every path of both writers at once, on fixed values: named target
    /// with and without tokens, every key type, every escaped character.
    #[test]
    fn every_element_and_escape_matches() {
        let auth = AuthHeader {
            user_id: "u&<>\r\n\"'",
            signature: "",
            timestamp: "2010-04-09T14:04:54-07:00",
        };
        let leads: Vec<LeadKey> = LeadKeyType::ALL
            .into_iter()
            .map(|t| match t {
                LeadKeyType::Idnum => LeadKey::id(2_147_483_647).unwrap(),
                t => LeadKey::new(t, "a&b<c>d\re\"f'g").unwrap(),
            })
            .collect();
        let token = ProgramToken::new("{{my.<&>}}", "\r\n&amp;").unwrap();
        for target in [
            CampaignTarget::id(7),
            CampaignTarget::named("c&", "p<", []),
            CampaignTarget::named("c", "p", [token.clone()]),
        ] {
            let request = CampaignRequest::new(target, leads.clone()).unwrap();
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_request_campaign(&mut ours, &auth, &request, request.leads()).unwrap();
            reference::write_request_campaign(&mut theirs, &auth, &request, request.leads())
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            // An empty chunk: the writers agree on it too.
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_request_campaign(&mut ours, &auth, &request, &[]).unwrap();
            reference::write_request_campaign(&mut theirs, &auth, &request, &[]).unwrap();
            assert_eq!(ours, theirs);
        }
        let tokens = [token];
        for (run_at, tokens) in [(None, &tokens[..0]), (Some("r&"), &tokens[..])] {
            let params = ScheduleParams {
                program: "p",
                campaign: "c",
                run_at,
                tokens,
            };
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_schedule_campaign(&mut ours, &auth, &params).unwrap();
            reference::write_schedule_campaign(&mut theirs, &auth, &params).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }

    /// The block-wise scan sees a special byte at every position of the
    /// blocks and of the padded rest.
    #[test]
    fn escaping_finds_a_special_byte_anywhere() {
        for len in 1..50 {
            for at in 0..len {
                for special in ['&', '<', '>', '\r'] {
                    let mut text: Vec<char> = "é".repeat(len).chars().collect();
                    text[at] = special;
                    let text: String = text.into_iter().collect();
                    let mut ours = Vec::new();
                    write::push_escaped(&mut ours, &text);
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        reference::escape_text(&text),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_literal_head_names_both_namespaces() {
        let mut out = Vec::new();
        let request = CampaignRequest::new(CampaignTarget::id(1), [LeadKey::id(1).unwrap()]);
        let auth = AuthHeader {
            user_id: "u",
            signature: "s",
            timestamp: "t",
        };
        write_request_campaign(&mut out, &auth, &request.unwrap(), &[]).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(xml.contains(&format!(r#"xmlns:SOAP-ENV="{SOAP_ENV_NS}""#)));
        assert!(xml.contains(&format!(r#"xmlns:ns1="{MKTOWS_NS}""#)));
    }
}
