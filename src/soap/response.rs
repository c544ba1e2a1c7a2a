//! The response reader: `successRequestCampaign` or a SOAP fault, nothing else.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Error, SoapCode};
use crate::redact::{quote, redact};

/// How much of an unexpected body an error keeps.
pub(crate) const BODY_EXCERPT: usize = 512;
/// Deeper nesting than this is not a Marketo answer.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Default)]
struct Parsed {
    saw_envelope: bool,
    success_element: bool,
    success: Option<String>,
    fault: bool,
    fault_string: Option<String>,
    detail_code: Option<String>,
    detail_message: Option<String>,
}

/// Reads a SOAP answer to an operation whose success element is
/// `success_element` (e.g. `successRequestCampaign`).
///
/// `Ok(())` only for HTTP 200 with `<success>true</success>`. Marketo's
/// fault on HTTP 500 becomes [`Error::SoapFault`] (the call did not run); a
/// 4xx or 501 [`Error::HttpStatus`] (refused before running; a fault in it
/// keeps its code); anything else, a fault on another status included (a
/// gateway wraps its upstream's failures so), [`Error::Protocol`] with the
/// body's start: the call may have run. Every quoted text is redacted
/// first.
pub(crate) fn read_response(status: u16, body: &[u8], success_element: &str) -> Result<(), Error> {
    // Marketo's success answer, byte for byte (as the sandbox and the
    // bridge write it): nothing else to read. Any other spelling is parsed.
    if status == 200 && is_canonical_success(body, success_element) {
        return Ok(());
    }
    let protocol = |reason: String| Error::Protocol {
        status,
        // Reasons may quote names from the body: keep them short too.
        reason: quote(reason.as_bytes(), BODY_EXCERPT),
        body: quote(body, BODY_EXCERPT),
    };
    let refused = (400..500).contains(&status) || status == 501;
    let parsed = match parse(body, success_element) {
        Ok(parsed) => parsed,
        Err(reason) if refused => {
            log::debug!("HTTP {status} without a SOAP body: {reason}");
            return Err(Error::HttpStatus {
                status,
                body: quote(body, BODY_EXCERPT),
            });
        }
        Err(reason) => return Err(protocol(reason)),
    };
    if parsed.fault {
        let fault = fault_error(&parsed);
        return match (status, fault) {
            (500, fault) => Err(fault),
            (_, fault @ Error::SoapFault { .. }) if refused => Err(fault),
            (_, fault) => Err(protocol(format!(
                "a SOAP fault on HTTP {status}, not Marketo's HTTP 500 ({fault})"
            ))),
        };
    }
    if refused {
        return Err(Error::HttpStatus {
            status,
            body: quote(body, BODY_EXCERPT),
        });
    }
    if status != 200 {
        return Err(protocol(format!("HTTP {status} without a SOAP fault")));
    }
    if !parsed.success_element {
        return Err(protocol(format!("no {success_element} in the body")));
    }
    match parsed.success.as_deref() {
        Some("true" | "1") => Ok(()),
        Some(other) => Err(protocol(format!("result/success is {other:?}, not true"))),
        None => Err(protocol(format!("{success_element} has no result/success"))),
    }
}

/// Whether `body` is exactly the canonical success answer of the operation
/// whose success element is `success_element`.
fn is_canonical_success(body: &[u8], success_element: &str) -> bool {
    use crate::soap::server::{SUCCESS_REQUEST_CAMPAIGN, SUCCESS_SCHEDULE_CAMPAIGN};
    match success_element {
        "successRequestCampaign" => body == SUCCESS_REQUEST_CAMPAIGN.as_bytes(),
        "successScheduleCampaign" => body == SUCCESS_SCHEDULE_CAMPAIGN.as_bytes(),
        _ => false,
    }
}

fn fault_error(parsed: &Parsed) -> Error {
    let fault_string = parsed.fault_string.clone().unwrap_or_default();
    let code = parsed
        .detail_code
        .as_deref()
        .and_then(|c| c.trim().parse::<u32>().ok())
        .or_else(|| leading_code(&fault_string))
        .or_else(|| {
            parsed
                .detail_message
                .as_deref()
                .and_then(parenthesised_code)
        })
        .unwrap_or(0);
    let message = match fault_string.split_once(" - ") {
        Some((num, rest)) if num.trim().parse::<u32>().is_ok() => rest.to_owned(),
        _ => parsed
            .detail_message
            .clone()
            .filter(|_| fault_string.is_empty())
            .unwrap_or(fault_string),
    };
    Error::SoapFault {
        code: SoapCode::from_code(code),
        message: redact(&message).into_owned(),
    }
}

/// `20014 - Authentication failed` → 20014.
fn leading_code(s: &str) -> Option<u32> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `Authentication failed (20014)` → 20014.
fn parenthesised_code(s: &str) -> Option<u32> {
    let start = s.rfind('(')?;
    let end = s[start..].find(')')? + start;
    s[start + 1..end].trim().parse().ok()
}

/// The elements the reader tells apart, by local name; the rest are
/// `Other`. Paths are kept as these tags, so reading allocates only for
/// the texts it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Envelope,
    Body,
    /// The operation's success element, e.g. `successRequestCampaign`.
    SuccessElement,
    Result,
    Success,
    Fault,
    FaultString,
    Detail,
    Code,
    Message,
    Other,
}

impl Tag {
    fn of(name: &[u8], success_element: &str) -> Tag {
        match name {
            b"Envelope" => Tag::Envelope,
            b"Body" => Tag::Body,
            b"result" => Tag::Result,
            b"success" => Tag::Success,
            b"Fault" => Tag::Fault,
            b"faultstring" => Tag::FaultString,
            b"detail" => Tag::Detail,
            b"code" => Tag::Code,
            b"message" => Tag::Message,
            n if n == success_element.as_bytes() => Tag::SuccessElement,
            _ => Tag::Other,
        }
    }
}

fn parse(body: &[u8], success_element: &str) -> Result<Parsed, String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path = [Tag::Other; MAX_DEPTH];
    let mut depth = 0;
    let mut parsed = Parsed::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::DocType(_) => return Err("a DOCTYPE is not allowed in a SOAP message".into()),
            Event::Start(e) => {
                if depth >= MAX_DEPTH {
                    return Err("the XML nests too deeply".into());
                }
                let tag = Tag::of(e.local_name().as_ref(), success_element);
                on_open(&path[..depth], tag, &mut parsed)?;
                path[depth] = tag;
                depth += 1;
            }
            Event::Empty(e) => {
                let tag = Tag::of(e.local_name().as_ref(), success_element);
                on_open(&path[..depth], tag, &mut parsed)?;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| format!("bad text in the XML: {e}"))?;
                on_text(&path[..depth], || text.into_owned(), &mut parsed);
            }
            Event::CData(c) => {
                on_text(
                    &path[..depth],
                    || String::from_utf8_lossy(&c).into_owned(),
                    &mut parsed,
                );
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !parsed.saw_envelope {
        return Err("not a SOAP envelope".into());
    }
    Ok(parsed)
}

fn on_open(path: &[Tag], tag: Tag, parsed: &mut Parsed) -> Result<(), String> {
    match (path, tag) {
        ([], Tag::Envelope) => parsed.saw_envelope = true,
        ([], _) => return Err("the root element is not a SOAP Envelope".into()),
        ([_, Tag::Body], Tag::Fault) => parsed.fault = true,
        ([_, Tag::Body], Tag::SuccessElement) => parsed.success_element = true,
        _ => {}
    }
    Ok(())
}

/// Keeps the text (made by `text`) of the elements the answer is read from.
fn on_text(path: &[Tag], text: impl FnOnce() -> String, parsed: &mut Parsed) {
    use Tag::*;
    let slot = match path {
        [Envelope, Body, SuccessElement, Result, Success] => &mut parsed.success,
        [Envelope, Body, Fault, FaultString] => &mut parsed.fault_string,
        [Envelope, Body, Fault, Detail, _, Code] => &mut parsed.detail_code,
        [Envelope, Body, Fault, Detail, _, Message] => &mut parsed.detail_message,
        _ => return,
    };
    *slot = Some(text());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Delivery;

    const OP: &str = "successRequestCampaign";

    fn fault(code: &str, text: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>{code} - {text}</faultstring><detail><ns1:serviceException><name>mktServiceException</name><message>{text} ({code})</message><code>{code}</code></ns1:serviceException></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        )
    }

    #[test]
    fn the_canonical_answers_read_as_the_parser_reads_them() {
        use crate::soap::server::{SUCCESS_REQUEST_CAMPAIGN, SUCCESS_SCHEDULE_CAMPAIGN};
        for (body, op) in [
            (SUCCESS_REQUEST_CAMPAIGN, "successRequestCampaign"),
            (SUCCESS_SCHEDULE_CAMPAIGN, "successScheduleCampaign"),
        ] {
            assert!(is_canonical_success(body.as_bytes(), op));
            // The parser agrees on the same bytes.
            let parsed = parse(body.as_bytes(), op).unwrap();
            assert!(parsed.success_element && parsed.success.as_deref() == Some("true"));
            read_response(200, body.as_bytes(), op).unwrap();
            // Not on another status, nor for the other operation.
            assert!(read_response(500, body.as_bytes(), op).is_err());
            assert!(read_response(202, body.as_bytes(), op).is_err());
        }
        assert!(read_response(
            200,
            SUCCESS_REQUEST_CAMPAIGN.as_bytes(),
            "successScheduleCampaign"
        )
        .is_err());
        assert!(read_response(
            200,
            SUCCESS_SCHEDULE_CAMPAIGN.as_bytes(),
            "successRequestCampaign"
        )
        .is_err());
        // A byte off: parsed, and still read right.
        let spaced = SUCCESS_REQUEST_CAMPAIGN.replace("<result>", "<result> ");
        assert!(!is_canonical_success(
            spaced.as_bytes(),
            "successRequestCampaign"
        ));
        read_response(200, spaced.as_bytes(), "successRequestCampaign").unwrap();
        let falsy = SUCCESS_REQUEST_CAMPAIGN.replace("true", "false");
        assert!(read_response(200, falsy.as_bytes(), "successRequestCampaign").is_err());
    }

    #[test]
    fn success() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body><ns1:successRequestCampaign><result><success>true</success></result></ns1:successRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        read_response(200, body.as_bytes(), OP).unwrap();
        let err = read_response(200, body.replace("true", "false").as_bytes(), OP).unwrap_err();
        assert_eq!(err.delivery(), Delivery::Unknown);
        // The answer to another operation is not a success.
        assert!(read_response(200, body.as_bytes(), "successScheduleCampaign").is_err());
    }

    #[test]
    fn faults_map_to_codes() {
        for (code, expected) in [
            (20014, SoapCode::AuthenticationFailed),
            (20016, SoapCode::RequestExpired),
            (20015, SoapCode::RequestLimitExceeded),
            (20023, SoapCode::RateLimited),
            (20024, SoapCode::ConcurrencyLimited),
            (20110, SoapCode::BadParameter),
            (20113, SoapCode::CampaignNotFound),
            (29999, SoapCode::Other(29999)),
        ] {
            let err = read_response(500, fault(&code.to_string(), "Some text").as_bytes(), OP)
                .unwrap_err();
            assert_eq!(err.soap_code(), Some(expected));
            assert_eq!(err.delivery(), Delivery::Refused);
            assert!(err.to_string().contains("Some text"), "{err}");
        }
    }

    #[test]
    fn fault_code_from_fault_string_when_detail_is_missing() {
        let body = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>20113 - Campaign not found</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        let err = read_response(500, body.as_bytes(), OP).unwrap_err();
        assert_eq!(err.soap_code(), Some(SoapCode::CampaignNotFound));
    }

    #[test]
    fn anything_else_is_a_protocol_error_with_the_body() {
        let err = read_response(200, b"", OP).unwrap_err();
        assert_eq!(err.delivery(), Delivery::Unknown);
        let err = read_response(200, b"<html>oops</html>", OP).unwrap_err();
        assert!(err.to_string().contains("oops"));
        let err = read_response(502, b"Bad gateway", OP).unwrap_err();
        assert_eq!(err.delivery(), Delivery::Unknown);
        let err = read_response(404, b"Not Found", OP).unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 404, .. }));
        let long = "x".repeat(10_000);
        let err = read_response(200, long.as_bytes(), OP).unwrap_err();
        assert!(err.to_string().len() < 1_000);
    }

    #[test]
    fn doctype_and_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&lol2;</SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
        let err = read_response(200, bomb.as_bytes(), OP).unwrap_err();
        assert!(err.to_string().contains("DOCTYPE"), "{err}");
    }
}

/// Property tests: faults are read back exactly, and no answer, however
/// hostile, panics, succeeds by accident, or takes long.
#[cfg(test)]
mod proptests {
    use std::time::{Duration, Instant};

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::error::Delivery;
    use crate::soap::envelope::escape_text;
    use test_support::{edits, entity_bomb, mutate, xml_piece, XML_SPLICES};

    const OP: &str = "successRequestCampaign";
    const HEAD: &str = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Body>"#
    );
    const TAIL: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>";

    fn success() -> String {
        format!("{HEAD}<ns1:{OP}><result><success>true</success></result></ns1:{OP}>{TAIL}")
    }

    /// A fault as Marketo writes it, its text escaped.
    fn fault(code: u32, text: &str) -> String {
        let text = escape_text(text);
        format!(
            "{HEAD}<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>{code} - {text}</faultstring><detail><ns1:serviceException><name>mktServiceException</name><message>{text} ({code})</message><code>{code}</code></ns1:serviceException></detail></SOAP-ENV:Fault>{TAIL}"
        )
    }

    fn fault_text() -> impl Strategy<Value = String> {
        vec(xml_piece(), 1..10).prop_map(|p| p.concat())
    }

    fn status() -> impl Strategy<Value = u16> {
        prop_oneof![
            4 => Just(200u16),
            2 => Just(500u16),
            1 => prop::sample::select(vec![201u16, 202, 204, 301, 400, 401, 403, 404, 410, 429, 502, 503]),
            1 => any::<u16>(),
        ]
    }

    /// What every answer must satisfy, whatever it holds.
    fn check(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
        match read_response(status, body, OP) {
            Ok(()) => prop_assert_eq!(status, 200),
            Err(err) => {
                let shown = err.to_string();
                prop_assert!(
                    shown.len() <= 4 * BODY_EXCERPT + 1024,
                    "error of {} bytes",
                    shown.len()
                );
                match &err {
                    Error::SoapFault { .. } | Error::HttpStatus { .. } => {
                        prop_assert_eq!(err.delivery(), Delivery::Refused)
                    }
                    Error::Protocol { .. } => prop_assert_eq!(err.delivery(), Delivery::Unknown),
                    other => prop_assert!(false, "unexpected error {:?}", other),
                }
                if matches!(err, Error::HttpStatus { .. }) {
                    prop_assert!((400..500).contains(&status) || status == 501);
                }
                if matches!(err, Error::SoapFault { .. }) {
                    prop_assert!(status == 500 || (400..500).contains(&status));
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// A fault's code and text come back as sent (less trailing
        /// whitespace, which the reader trims).
        #[test]
        fn faults_are_read_back_exactly(code in any::<u32>(), text in fault_text(), status in prop::sample::select(vec![400u16, 500])) {
            let expected = text.trim_end_matches([' ', '\t', '\n']);
            prop_assume!(!expected.trim().is_empty());
            match read_response(status, fault(code, &text).as_bytes(), OP) {
                Err(Error::SoapFault { code: got, message }) => {
                    prop_assert_eq!(got.code(), code);
                    prop_assert_eq!(message, expected);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        /// A fault on any status but 500 (and 4xx) is not Marketo's
        /// refusal: a gateway may have wrapped a run (issue 8, defect 2).
        #[test]
        fn faults_off_500_are_unknown(code in any::<u32>(), text in fault_text(), status in prop::sample::select(vec![200u16, 502, 503, 504, 599])) {
            prop_assume!(!text.trim().is_empty());
            let err = read_response(status, fault(code, &text).as_bytes(), OP).unwrap_err();
            prop_assert!(matches!(err, Error::Protocol { .. }), "{:?}", err);
            prop_assert_eq!(err.delivery(), Delivery::Unknown);
        }
    }

    // --- At scale: arbitrary and mutated answers.

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_answers_are_classified(status in status(), body in vec(any::<u8>(), 0..512)) {
            check(status, &body)?;
        }

        #[test]
        fn mutated_answers_are_classified(
            status in status(),
            which in 0usize..3,
            edits in edits(),
        ) {
            let mut doc = vec![success(), fault(20014, "Authentication failed"), fault(20113, "Campaign not found")]
                .swap_remove(which)
                .into_bytes();
            mutate(&mut doc, &edits, XML_SPLICES, 64);
            check(status, &doc)?;
        }
    }

    #[test]
    fn only_a_true_success_element_in_a_200_succeeds() {
        read_response(200, success().as_bytes(), OP).unwrap();
        for status in [201, 202, 204, 302, 500, 503] {
            assert!(
                read_response(status, success().as_bytes(), OP).is_err(),
                "{status}"
            );
        }
        // CDATA true is text "true" too.
        let cdata = success().replace(">true<", "><![CDATA[true]]><");
        read_response(200, cdata.as_bytes(), OP).unwrap();
        // A fault anywhere wins over a success element.
        let both = format!(
            "{HEAD}<ns1:{OP}><result><success>true</success></result></ns1:{OP}><SOAP-ENV:Fault><faultstring>20014 - x</faultstring></SOAP-ENV:Fault>{TAIL}"
        );
        assert!(read_response(200, both.as_bytes(), OP).is_err());
    }

    #[test]
    fn entity_bombs_are_refused_quickly_without_expansion() {
        // A billion-laughs document of about 1 MB.
        let bomb = entity_bomb(
            1 << 20,
            &format!("{HEAD}<ns1:{OP}><result><success>&lol9;</success></result></ns1:{OP}>{TAIL}"),
        );
        assert!(bomb.len() > 1 << 20);
        for status in [200, 500] {
            let started = Instant::now();
            let err = read_response(status, bomb.as_bytes(), OP).unwrap_err();
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{:?}",
                started.elapsed()
            );
            assert!(err.to_string().contains("DOCTYPE"), "{err}");
            assert!(err.to_string().len() < 2048);
        }
        // Without a DOCTYPE an entity reference is an error, not expanded.
        let undeclared = success().replace(">true<", ">&lol9;<");
        assert!(read_response(200, undeclared.as_bytes(), OP).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let depth = 100_000;
        let started = Instant::now();
        let deep = format!(
            "{HEAD}{}{}{TAIL}",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let err = read_response(200, deep.as_bytes(), OP).unwrap_err();
        assert!(err.to_string().contains("nests too deeply"), "{err}");
        let unclosed = format!("{HEAD}{}", "<a>".repeat(depth));
        assert!(read_response(500, unclosed.as_bytes(), OP).is_err());
        let empties = format!("{HEAD}<ns1:{OP}>{}</ns1:{OP}>{TAIL}", "<a/>".repeat(depth));
        assert!(read_response(200, empties.as_bytes(), OP).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// Was a bug: the reader's error reason quotes quick-xml's error, which
    /// quotes names from the body without a bound (a mismatched end tag, an
    /// unknown entity), so one answer of 1 MiB gives an error message of
    /// 1 MiB, though the body itself is cut to 512 bytes. Fix in `parse`:
    /// cut the reason (e.g. with `excerpt`).
    #[test]
    fn error_messages_stay_short_whatever_the_names() {
        let name = "b".repeat(100_000);
        for body in [
            format!("{HEAD}<a></{name}>{TAIL}"),
            format!("{HEAD}&{name};{TAIL}"),
        ] {
            let err = read_response(200, body.as_bytes(), OP).unwrap_err();
            assert!(
                err.to_string().len() < 4096,
                "{} bytes",
                err.to_string().len()
            );
        }
    }
}
