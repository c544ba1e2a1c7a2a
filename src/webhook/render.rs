//! Filling a webhook's URL, headers and template with tokens.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use super::definition::{RequestType, TokenEncoding, Webhook};
use super::tokens::{TokenContext, TokenValue};

/// Everything but `A-Z a-z 0-9 - . _ ~` (RFC 3986's unreserved characters).
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// In header values: control characters and `%` (and, as always,
/// non-ASCII bytes), so that the value stays one line of visible ASCII and
/// percent-decodes back to the token's value.
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b'%');

/// `application/x-www-form-urlencoded` keeps `A-Z a-z 0-9 * - . _`; space
/// becomes `+` (handled apart).
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b' ');

/// The HTTP request a webhook makes for one lead, exactly as it would be
/// sent. Its [`Display`](fmt::Display) is the request line (method and
/// full URL), the headers, an empty line and the body, byte for byte.
///
/// ```
/// use marketo_campaign::webhook::{TokenContext, Webhook};
/// use marketo_campaign::SystemClock;
/// let webhook = Webhook::from_json(r#"{"url": "https://e.com/h", "request_type": "POST", "template": "a={{lead.email}}", "request_token_encoding": "form"}"#)?;
/// let request = webhook.render(&TokenContext::new(&SystemClock).lead([("email", "x&y@e.com")]));
/// assert_eq!(request.to_string(), "POST https://e.com/h\nContent-Type: application/x-www-form-urlencoded\n\na=x%26y%40e.com");
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// The headers, custom ones in order, then `Content-Type` for a `POST`
    /// when no custom header sets it.
    pub headers: Vec<(String, String)>,
    /// The body (empty for a `GET`).
    pub body: String,
    /// What may not be what you meant: tokens left as written, lead fields
    /// the lead has no value for, string tokens quoted twice, values that
    /// break an unencoded template, a JSON template without a JSON
    /// `Content-Type`.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl RenderedRequest {
    /// The value of header `name` (any case), if set.
    ///
    /// ```
    /// use marketo_campaign::webhook::{TokenContext, Webhook};
    /// use marketo_campaign::SystemClock;
    /// let webhook = Webhook::from_json(r#"{"url": "https://e.com", "request_type": "POST"}"#)?;
    /// let request = webhook.render(&TokenContext::new(&SystemClock));
    /// assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for RenderedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}", self.method, self.url)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

/// Where a token is being inserted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Url,
    Header,
    Body(TokenEncoding),
}

impl Webhook {
    /// The request this webhook makes in `context`: see [the module's
    /// rules](crate::webhook). Never fails: unknown tokens are sent as
    /// written and listed in [`RenderedRequest::warnings`].
    pub fn render(&self, context: &TokenContext) -> RenderedRequest {
        let mut warnings = Vec::new();
        let url = fill(&self.url, context, Place::Url, &mut warnings);
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|h| {
                let value = fill(&h.value, context, Place::Header, &mut warnings);
                (h.name.clone(), value)
            })
            .collect();
        let body = match self.request_type {
            RequestType::Get => String::new(),
            RequestType::Post => {
                let encoding = self.request_token_encoding;
                fill(
                    &self.template,
                    context,
                    Place::Body(encoding),
                    &mut warnings,
                )
            }
        };
        if self.request_type == RequestType::Post {
            let content_type = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.to_ascii_lowercase());
            match content_type {
                None => {
                    if self.request_token_encoding == TokenEncoding::Json {
                        warnings.push(
                            "JSON encoding without a Content-Type header: Marketo sends \
                             application/x-www-form-urlencoded; add a custom header \
                             Content-Type: application/json"
                                .into(),
                        );
                    }
                    headers.push((
                        "Content-Type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ));
                }
                Some(t)
                    if self.request_token_encoding == TokenEncoding::Json
                        && !t.contains("json") =>
                {
                    warnings.push(format!(
                        "JSON encoding with Content-Type {t:?}: the service may not read the body as JSON"
                    ));
                }
                Some(_) => {}
            }
        }
        let mut seen = std::collections::HashSet::new();
        warnings.retain(|w| seen.insert(w.clone()));
        RenderedRequest {
            method: self.request_type.as_str().to_owned(),
            url,
            headers,
            body,
            warnings,
        }
    }
}

/// Fills `template`'s tokens in one pass; inserted values are never scanned.
fn fill(
    template: &str,
    context: &TokenContext,
    place: Place,
    warnings: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let inner = &after[..end];
        out.push_str(&rest[..start]);
        let whole = &rest[start..start + 2 + end + 2];
        match token_value(inner, context, warnings) {
            Some(value) => {
                if place == Place::Body(TokenEncoding::Json)
                    && matches!(value, TokenValue::Text(_))
                    && out.ends_with('"')
                    && after[end + 2..].starts_with('"')
                {
                    warnings.push(format!(
                        "{whole} is between double quotes: JSON encoding quotes string \
                         tokens itself, so the value arrives as \"\"value\"\"; remove the quotes"
                    ));
                }
                encode(&value, place, whole, &mut out, warnings);
            }
            None => out.push_str(whole),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A token's value, `None` to leave it as written (with a warning).
fn token_value(
    inner: &str,
    context: &TokenContext,
    warnings: &mut Vec<String>,
) -> Option<TokenValue> {
    let (name, default) = match inner.split_once(":default=") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let name = name.trim();
    if !name.contains('.') {
        // Not a token (e.g. a Mustache-like literal): sent as written.
        return None;
    }
    let value = context.resolve(name);
    let empty = value.as_ref().is_none_or(|v| v.as_str().is_empty());
    match (value, default) {
        (_, Some(default)) if empty => Some(TokenValue::Text(default.to_owned())),
        (Some(value), _) => Some(value),
        (None, _) if TokenContext::is_lead_token(name) => {
            warnings.push(format!(
                "{{{{{name}}}}}: the lead has no value for this field; sent empty"
            ));
            Some(TokenValue::Text(String::new()))
        }
        (None, _) => {
            warnings.push(format!(
                "{{{{{inner}}}}} names no known token; sent as written, as Marketo does"
            ));
            None
        }
    }
}

fn encode(
    value: &TokenValue,
    place: Place,
    whole: &str,
    out: &mut String,
    warnings: &mut Vec<String>,
) {
    let text = value.as_str();
    match place {
        Place::Url => out.extend(utf8_percent_encode(text, URL_VALUE)),
        Place::Header => out.extend(utf8_percent_encode(text, HEADER_VALUE)),
        Place::Body(TokenEncoding::Json) => match value {
            TokenValue::Text(s) => out.push_str(&json_string(s)),
            TokenValue::Raw(s) => out.push_str(s),
        },
        Place::Body(TokenEncoding::Form) => {
            for piece in utf8_percent_encode(text, FORM_VALUE) {
                out.push_str(&piece.replace(' ', "+"));
            }
        }
        Place::Body(TokenEncoding::None) => {
            if text.contains(['"', '\\', '&', '=', '<', '>', '\n', '\r', '+', '%']) {
                warnings.push(format!(
                    "{whole}'s value holds characters special in JSON, XML or forms and \
                     request_token_encoding is none: it is sent unencoded and may break \
                     the payload"
                ));
            }
            out.push_str(text);
        }
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    // Serializing a str cannot fail; the fallback keeps the type total.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn context() -> TokenContext {
        let clock = FixedClock::parse("2026-11-25T15:00:00Z").unwrap();
        TokenContext::new(&clock)
            .lead([("email", "a@b.c")])
            .request_tokens([("{{my.X}}", "{{my.X}} \"&\n<é")])
    }

    #[test]
    fn values_are_not_expanded_again() {
        let mut warnings = Vec::new();
        let body = fill(
            "{{my.X}}",
            &context(),
            Place::Body(TokenEncoding::None),
            &mut warnings,
        );
        assert_eq!(body, "{{my.X}} \"&\n<é");
        let body = fill(
            "{{my.X}}",
            &context(),
            Place::Body(TokenEncoding::Json),
            &mut warnings,
        );
        assert_eq!(body, r#""{{my.X}} \"&\n<é""#);
        let body = fill(
            "{{my.X}}",
            &context(),
            Place::Body(TokenEncoding::Form),
            &mut warnings,
        );
        assert_eq!(body, "%7B%7Bmy.X%7D%7D+%22%26%0A%3C%C3%A9");
        let url = fill(
            "https://e/?q={{my.X}}&r=%26",
            &context(),
            Place::Url,
            &mut warnings,
        );
        assert_eq!(
            url,
            "https://e/?q=%7B%7Bmy.X%7D%7D%20%22%26%0A%3C%C3%A9&r=%26"
        );
        let header = fill("v% {{my.X}}", &context(), Place::Header, &mut warnings);
        assert_eq!(header, "v% {{my.X}} \"&%0A<%C3%A9");
    }

    #[test]
    fn unknown_tokens_stay_and_missing_lead_fields_are_empty() {
        let mut warnings = Vec::new();
        let body = fill(
            "{{my.Nope}} {{lead.First Name}} {{lead.First Name:default=there}} {{ plain }} {{open",
            &context(),
            Place::Body(TokenEncoding::Json),
            &mut warnings,
        );
        assert_eq!(body, r#"{{my.Nope}} "" "there" {{ plain }} {{open"#);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("{{my.Nope}}"), "{warnings:?}");
        assert!(warnings[1].contains("{{lead.First Name}}"), "{warnings:?}");
    }
}
