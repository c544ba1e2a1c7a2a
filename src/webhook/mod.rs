//! Marketo webhooks (the Call Webhook flow step): definitions, and the
//! exact HTTP request Marketo would send for a lead.
//!
//! A [`Webhook`] is what Marketo's Admin > Webhooks screen holds: a URL, a
//! request type (`GET` or `POST`), a payload template, a request token
//! encoding (none, JSON, form/URL), a response type (JSON or XML), custom
//! headers and response mappings (a response attribute → a lead field).
//! Read one from JSON with [`Webhook::from_json`]; render it for a lead with
//! [`Webhook::render`] and a [`TokenContext`]; read a service's answer into
//! lead field updates with [`Webhook::map_response`].
//!
//! ```
//! use marketo_campaign::webhook::{TokenContext, Webhook};
//! use marketo_campaign::FixedClock;
//!
//! let webhook = Webhook::from_json(r#"{
//!     "name": "Register for webinar",
//!     "url": "https://webinars.example.com/register?title={{my.WebinarTitle}}",
//!     "request_type": "POST",
//!     "template": "{\"email\": {{lead.Email Address}}, \"join\": {{my.JoinLink}}}",
//!     "request_token_encoding": "json",
//!     "headers": [{"name": "Content-Type", "value": "application/json"}]
//! }"#)?;
//! let context = TokenContext::new(&FixedClock::parse("2026-11-25T15:00:00Z")?)
//!     .lead([("email", "ann \"the\" lead@example.com")])
//!     .request_tokens([("{{my.WebinarTitle}}", "Q&A: SOAP → REST"), ("{{my.JoinLink}}", "https://j.example.com/?a=1&b=2")]);
//! let request = webhook.render(&context);
//! assert_eq!(request.url, "https://webinars.example.com/register?title=Q%26A%3A%20SOAP%20%E2%86%92%20REST");
//! assert_eq!(request.body, r#"{"email": "ann \"the\" lead@example.com", "join": "https://j.example.com/?a=1&b=2"}"#);
//! assert!(request.warnings.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The rules, as Marketo documents them, and the choices made here
//!
//! Every outgoing field (URL, payload template, custom header values) is
//! filled with tokens, in one pass: a token's value is never scanned for
//! tokens again, so a value holding `{{my.X}}` is sent as those characters.
//!
//! - **Payload template.** With [`TokenEncoding::Json`], a string-typed
//!   token becomes a JSON string literal: wrapped in double quotes, with
//!   `"`, `\` and control characters escaped (Marketo: "string-type tokens
//!   are automatically enclosed in double quotes"); write `{"email":
//!   {{lead.Email Address}}}`, not `"{{lead.Email Address}}"` (the renderer
//!   warns about the second form). Numbers (a lead's `id`, `{{campaign.id}}`,
//!   `{{program.id}}`, JSON numbers and booleans of a lead file) go as
//!   written. With [`TokenEncoding::Form`], every value is
//!   `application/x-www-form-urlencoded` (`&` → `%26`, space → `+`, UTF-8
//!   bytes as `%XX`), unquoted. With [`TokenEncoding::None`], values are
//!   inserted as they are (Marketo's "None"): a value with `&` or `"` then
//!   breaks the format, as it would in Marketo, and the renderer warns when
//!   a value holds a character that is special in JSON, XML or forms.
//! - **URL.** The characters written in the URL field are sent as written
//!   (`&` as `&`, `%26` as `%26`). A token inside the URL is
//!   percent-encoded (every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`), so
//!   that a value can never add a query parameter or end the URL; this is
//!   this crate's choice for values, which Marketo does not document.
//! - **Custom headers.** Values are inserted without quotes; control
//!   characters (CR, LF, …), `%` and non-ASCII characters in a value are
//!   percent-encoded (UTF-8 bytes as `%XX`), so that a value can never add a
//!   header, every receiver can read it (many HTTP servers refuse non-ASCII
//!   header bytes), and percent-decoding gives the value back. This is this
//!   crate's choice; Marketo does not document it. Header names and the
//!   header templates' own text must not hold control characters
//!   ([`Webhook::from_json`] refuses them).
//! - **Content-Type.** A `POST` without a custom `Content-Type` header is
//!   sent with `application/x-www-form-urlencoded` (what Marketo sends by
//!   default; set the header for JSON or XML payloads; the renderer warns
//!   when a JSON-encoded webhook has none). A `GET` has no body.
//! - **Unknown tokens are sent as written** (`{{my.Missing}}` stays
//!   `{{my.Missing}}`), as Marketo leaves a token it cannot resolve, and
//!   are listed in [`RenderedRequest::warnings`]. A lead field the lead has
//!   no value for renders as an empty string (`""` with JSON encoding),
//!   as an empty Marketo field does. `{{lead.X:default=V}}` renders `V` when
//!   the field is empty or missing. `{{trigger.…}}` tokens have no value
//!   outside a real trigger and are left as written.
//! - **Token names.** `{{lead.Email Address}}` and `{{lead.email}}` both
//!   name the REST field `email`: names compare without regard to case,
//!   spaces and underscores, and Marketo's display names (`Email Address`,
//!   `Company Name`, `Job Title`, `Phone Number`, `Lead Owner Email Address`)
//!   map to their REST names. `{{company.Company Name}}` reads the lead too.
//!   `{{my.…}}` names compare without regard to case only.
//! - **System tokens** come from the [`Clock`](crate::Clock), in UTC:
//!   `{{system.dateTime}}` `2026-11-25 15:00:00`, `{{system.date}}`
//!   `2026-11-25`, `{{system.time}}` `15:00:00`.

mod definition;
mod render;
mod response;
mod tokens;

pub use definition::{
    CustomHeader, RequestType, ResponseMapping, ResponseType, TokenEncoding, Webhook,
};
pub use render::RenderedRequest;
pub use tokens::{TokenContext, TokenValue};

/// How long Marketo waits for a webhook's service before giving up: 30 s.
pub const MARKETO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
