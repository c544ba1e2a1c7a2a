//! A webhook definition, as Marketo's Admin > Webhooks holds it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The HTTP method of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestType {
    /// `GET`: no body; the payload template must be empty.
    #[serde(rename = "GET", alias = "get")]
    Get,
    /// `POST`: the payload template is the body.
    #[serde(rename = "POST", alias = "post")]
    Post,
}

impl RequestType {
    /// `"GET"` or `"POST"`.
    ///
    /// ```
    /// use marketo_campaign::webhook::RequestType;
    /// assert_eq!(RequestType::Post.as_str(), "POST");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Get => "GET",
            RequestType::Post => "POST",
        }
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How token values are encoded in the payload template (Marketo's
/// "Request Token Encoding"). See [the module](crate::webhook) for the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenEncoding {
    /// Values inserted as they are. The default, as in Marketo.
    #[default]
    None,
    /// String values become JSON string literals (quoted and escaped).
    Json,
    /// Values are `application/x-www-form-urlencoded`.
    #[serde(alias = "url", alias = "form/url")]
    Form,
}

/// The format of the service's answer (Marketo's "Response Type"), which
/// [`ResponseMapping`] attributes are read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// JSON; attributes are dotted paths with `[n]` indexes, e.g.
    /// `data.registrants[0].id`. The default.
    #[default]
    Json,
    /// XML; attributes are dotted element paths from the root element,
    /// e.g. `response.registrant.id`.
    Xml,
}

/// A custom header: a name and a value template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomHeader {
    /// The header's name, e.g. `X-Api-Key`.
    pub name: String,
    /// Its value; tokens allowed.
    pub value: String,
}

/// A response mapping: the response attribute whose value goes into a lead
/// field when the service answers 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseMapping {
    /// Where the value is in the response, e.g. `registrant.id`.
    pub attribute: String,
    /// The lead field (REST name) it goes to, e.g. `webinarRegistrantId`.
    pub field: String,
}

/// A webhook definition. Read it from JSON with [`Webhook::from_json`]
/// (field names in `snake_case`, unknown fields refused):
///
/// ```json
/// {
///   "name": "Register for webinar",
///   "url": "https://webinars.example.com/register",
///   "request_type": "POST",
///   "template": "{\"email\": {{lead.Email Address}}}",
///   "request_token_encoding": "json",
///   "response_type": "json",
///   "headers": [{"name": "Content-Type", "value": "application/json"}],
///   "response_mappings": [{"attribute": "registrant.id", "field": "webinarRegistrantId"}]
/// }
/// ```
///
/// `request_token_encoding` is `none` (default), `json` or `form`;
/// `response_type` is `json` (default) or `xml`; `template`, `headers` and
/// `response_mappings` may be left out.
///
/// ```
/// use marketo_campaign::webhook::{RequestType, Webhook};
/// let webhook = Webhook::from_json(r#"{"url": "https://example.com/hook", "request_type": "GET"}"#)?;
/// assert_eq!(webhook.request_type, RequestType::Get);
/// assert!(Webhook::from_json(r#"{"url": "https://example.com", "request_type": "PUT"}"#).is_err());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The webhook's name (Call Webhook steps refer to it by name).
    #[serde(default)]
    pub name: String,
    /// The URL; tokens allowed. Characters are sent as written.
    pub url: String,
    /// `GET` or `POST`.
    pub request_type: RequestType,
    /// The payload template (the body of a `POST`).
    #[serde(default)]
    pub template: String,
    /// How token values are encoded in the template.
    #[serde(default)]
    pub request_token_encoding: TokenEncoding,
    /// The format of the answer.
    #[serde(default)]
    pub response_type: ResponseType,
    /// Custom headers, in order.
    #[serde(default)]
    pub headers: Vec<CustomHeader>,
    /// Response mappings, in order.
    #[serde(default)]
    pub response_mappings: Vec<ResponseMapping>,
}

impl Webhook {
    /// Parses a definition and [checks](Webhook::check) it.
    pub fn from_json(json: &str) -> Result<Webhook, Error> {
        let webhook: Webhook = serde_json::from_str(json)
            .map_err(|e| Error::invalid("webhook definition", e.to_string()))?;
        webhook.check()?;
        Ok(webhook)
    }

    /// Reads [`Webhook::from_json`] from a file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Webhook, Error> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(
                "webhook definition",
                format!("reading {}: {e}", path.display()),
            )
        })?;
        Webhook::from_json(&json)
    }

    /// Checks what Marketo would refuse or could never send: an empty URL or
    /// one not starting with `http://` or `https://`; a `GET` with a payload
    /// template (a GET carries no body); a header name that is empty or not
    /// an HTTP token; control characters (CR, LF, …) in the URL or a header
    /// value template; an empty response mapping attribute or field.
    ///
    /// ```
    /// use marketo_campaign::webhook::Webhook;
    /// let err = Webhook::from_json(r#"{"url": "https://e.com", "request_type": "GET", "template": "x"}"#).unwrap_err();
    /// assert!(err.to_string().contains("GET"));
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        let bad = |reason: String| {
            let what = if self.name.is_empty() {
                "webhook definition".to_owned()
            } else {
                format!("webhook {:?}", self.name)
            };
            Err(Error::invalid(what, reason))
        };
        let url = self.url.trim_start();
        let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
            url.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if !scheme_ok {
            return bad(format!(
                "url {:?} must start with http:// or https://",
                self.url
            ));
        }
        if self.url.chars().any(char::is_control) {
            return bad("url holds a control character (CR, LF, tab, …)".into());
        }
        if self.request_type == RequestType::Get && !self.template.is_empty() {
            return bad(
                "a GET request carries no body: empty the template or use request_type POST".into(),
            );
        }
        for header in &self.headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if header.name.is_empty() || !header.name.chars().all(token) {
                return bad(format!(
                    "header name {:?} is not an HTTP header name (letters, digits, -, _ …)",
                    header.name
                ));
            }
            if header.value.chars().any(|c| c.is_control() && c != '\t') {
                return bad(format!(
                    "header {:?}: the value holds a control character (CR, LF, …)",
                    header.name
                ));
            }
        }
        for mapping in &self.response_mappings {
            if mapping.attribute.trim().is_empty() || mapping.field.trim().is_empty() {
                return bad("a response mapping needs an attribute and a field".into());
            }
        }
        Ok(())
    }
}
