//! The response reader: `successRequestCampaign` or a SOAP fault, nothing else.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{excerpt, Error, SoapCode};

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
/// `Ok(())` only for `<success>true</success>`. A fault becomes
/// [`Error::SoapFault`]; a 4xx without a fault [`Error::HttpStatus`];
/// anything else [`Error::Protocol`] with the body's start.
pub(crate) fn read_response(status: u16, body: &[u8], success_element: &str) -> Result<(), Error> {
    let protocol = |reason: String| Error::Protocol {
        status,
        reason,
        body: excerpt(body, BODY_EXCERPT),
    };
    let parsed = match parse(body, success_element) {
        Ok(parsed) => parsed,
        Err(reason) if (400..500).contains(&status) => {
            log::debug!("HTTP {status} without a SOAP body: {reason}");
            return Err(Error::HttpStatus {
                status,
                body: excerpt(body, BODY_EXCERPT),
            });
        }
        Err(reason) => return Err(protocol(reason)),
    };
    if parsed.fault {
        return Err(fault_error(&parsed));
    }
    if (400..500).contains(&status) {
        return Err(Error::HttpStatus {
            status,
            body: excerpt(body, BODY_EXCERPT),
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
        message,
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

fn parse(body: &[u8], success_element: &str) -> Result<Parsed, String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut parsed = Parsed::default();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::DocType(_) => return Err("a DOCTYPE is not allowed in a SOAP message".into()),
            Event::Start(e) => {
                if path.len() >= MAX_DEPTH {
                    return Err("the XML nests too deeply".into());
                }
                let name = e.local_name().as_ref().to_vec();
                on_open(&path, &name, success_element, &mut parsed)?;
                path.push(name);
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_vec();
                on_open(&path, &name, success_element, &mut parsed)?;
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| format!("bad text in the XML: {e}"))?
                    .into_owned();
                on_text(&path, text, success_element, &mut parsed);
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(&c).into_owned();
                on_text(&path, text, success_element, &mut parsed);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        buf.clear();
    }
    if !parsed.saw_envelope {
        return Err("not a SOAP envelope".into());
    }
    Ok(parsed)
}

fn on_open(
    path: &[Vec<u8>],
    name: &[u8],
    success_element: &str,
    parsed: &mut Parsed,
) -> Result<(), String> {
    match (path.len(), name) {
        (0, b"Envelope") => parsed.saw_envelope = true,
        (0, _) => return Err("the root element is not a SOAP Envelope".into()),
        (2, b"Fault") if path[1] == b"Body" => parsed.fault = true,
        (2, n) if path[1] == b"Body" && n == success_element.as_bytes() => {
            parsed.success_element = true
        }
        _ => {}
    }
    Ok(())
}

fn on_text(path: &[Vec<u8>], text: String, success_element: &str, parsed: &mut Parsed) {
    let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
    match names.as_slice() {
        [b"Envelope", b"Body", s, b"result", b"success"] if *s == success_element.as_bytes() => {
            parsed.success = Some(text)
        }
        [b"Envelope", b"Body", b"Fault", b"faultstring"] => parsed.fault_string = Some(text),
        [b"Envelope", b"Body", b"Fault", b"detail", _, b"code"] => parsed.detail_code = Some(text),
        [b"Envelope", b"Body", b"Fault", b"detail", _, b"message"] => {
            parsed.detail_message = Some(text)
        }
        _ => {}
    }
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
