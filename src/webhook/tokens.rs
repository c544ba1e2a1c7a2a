//! The values tokens resolve to: lead, system, campaign and program tokens.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::clock::Clock;

/// A token's value and its type, which decides whether JSON encoding quotes
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenValue {
    /// A string: quoted and escaped by JSON encoding.
    Text(String),
    /// A number or boolean, written as is (e.g. `1002200`, `true`).
    Raw(String),
}

impl TokenValue {
    /// The value's text.
    ///
    /// ```
    /// use marketo_campaign::webhook::TokenValue;
    /// assert_eq!(TokenValue::Raw("7".into()).as_str(), "7");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            TokenValue::Text(s) | TokenValue::Raw(s) => s,
        }
    }

    /// A value from JSON: strings are [`Text`](TokenValue::Text), numbers and
    /// booleans [`Raw`](TokenValue::Raw), `null` an empty text, arrays and
    /// objects their JSON text.
    ///
    /// ```
    /// use marketo_campaign::webhook::TokenValue;
    /// assert_eq!(TokenValue::from_json(&serde_json::json!(12)), TokenValue::Raw("12".into()));
    /// assert_eq!(TokenValue::from_json(&serde_json::json!("a")), TokenValue::Text("a".into()));
    /// ```
    pub fn from_json(value: &serde_json::Value) -> TokenValue {
        match value {
            serde_json::Value::String(s) => TokenValue::Text(s.clone()),
            serde_json::Value::Number(n) => TokenValue::Raw(n.to_string()),
            serde_json::Value::Bool(b) => TokenValue::Raw(b.to_string()),
            serde_json::Value::Null => TokenValue::Text(String::new()),
            other => TokenValue::Text(other.to_string()),
        }
    }
}

impl From<&str> for TokenValue {
    fn from(s: &str) -> Self {
        TokenValue::Text(s.to_owned())
    }
}

impl From<String> for TokenValue {
    fn from(s: String) -> Self {
        TokenValue::Text(s)
    }
}

/// What a webhook's tokens resolve to in one flow step: the lead's fields,
/// the campaign, the program and its `{{my.…}}` tokens (the request's values
/// override the program's defaults), and the time for `{{system.…}}`.
///
/// ```
/// use marketo_campaign::webhook::{TokenContext, TokenValue};
/// use marketo_campaign::FixedClock;
/// let context = TokenContext::new(&FixedClock::parse("2026-11-25T15:00:00Z")?)
///     .lead([("id", TokenValue::Raw("1002200".into())), ("email", "lead@company.com".into())])
///     .campaign(1234, "Send Webinar Reminder")
///     .program("Webinars", [("{{my.WebinarTitle}}", "Default title"), ("{{my.JoinLink}}", "https://j")])
///     .request_tokens([("{{my.WebinarTitle}}", "Migrating off SOAP")]);
/// assert_eq!(context.resolve("lead.Email Address"), Some(TokenValue::Text("lead@company.com".into())));
/// assert_eq!(context.resolve("my.WebinarTitle"), Some(TokenValue::Text("Migrating off SOAP".into())));
/// assert_eq!(context.resolve("my.JoinLink"), Some(TokenValue::Text("https://j".into())));
/// assert_eq!(context.resolve("campaign.id"), Some(TokenValue::Raw("1234".into())));
/// assert_eq!(context.resolve("system.dateTime"), Some(TokenValue::Text("2026-11-25 15:00:00".into())));
/// assert_eq!(context.resolve("my.Missing"), None);
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenContext {
    now: DateTime<Utc>,
    lead: BTreeMap<String, TokenValue>,
    campaign: Option<(u32, String)>,
    program: Option<(Option<u32>, String)>,
    my: BTreeMap<String, TokenValue>,
}

/// Marketo's display names of standard fields, normalized, and their REST
/// names, normalized.
const DISPLAY_NAMES: [(&str, &str); 6] = [
    ("emailaddress", "email"),
    ("companyname", "company"),
    ("jobtitle", "title"),
    ("phonenumber", "phone"),
    ("leadowneremailaddress", "leadowneremail"),
    ("leadid", "id"),
];

/// Lower case, without spaces and underscores.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `{{my.X}}`, `my.X` or `X` → `x` (trimmed, lower case: `{{my.Title}}`
/// and `{{my.title}}` are one token, `{{my.Web Title}}` and
/// `{{my.WebTitle}}` two).
fn my_key(name: &str) -> String {
    let name = name.trim();
    let name = name
        .strip_prefix("{{")
        .and_then(|n| n.strip_suffix("}}"))
        .unwrap_or(name)
        .trim();
    let name = match name.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("my.") => &name[3..],
        _ => name,
    };
    name.trim().to_lowercase()
}

impl TokenContext {
    /// An empty context: system tokens from `clock`, read now.
    pub fn new(clock: &dyn Clock) -> Self {
        TokenContext {
            now: clock.now(),
            lead: BTreeMap::new(),
            campaign: None,
            program: None,
            my: BTreeMap::new(),
        }
    }

    /// Adds lead fields by REST name (`email`, `firstName`, …) or display
    /// name (`Email Address`).
    pub fn lead<K, V>(mut self, fields: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: Into<TokenValue>,
    {
        for (name, value) in fields {
            self.lead.insert(lead_key(name.as_ref()), value.into());
        }
        self
    }

    /// The campaign: `{{campaign.id}}`, `{{campaign.name}}`.
    pub fn campaign(mut self, id: u32, name: impl Into<String>) -> Self {
        self.campaign = Some((id, name.into()));
        self
    }

    /// The program: `{{program.name}}`, and its `{{my.…}}` tokens with their
    /// default values (names as `{{my.X}}`, `my.X` or `X`).
    pub fn program<K, V>(
        mut self,
        name: impl Into<String>,
        defaults: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: AsRef<str>,
        V: Into<TokenValue>,
    {
        let id = self.program.as_ref().and_then(|p| p.0);
        self.program = Some((id, name.into()));
        for (token, value) in defaults {
            self.my
                .entry(my_key(token.as_ref()))
                .or_insert_with(|| value.into());
        }
        self
    }

    /// The program's id: `{{program.id}}`.
    pub fn program_id(mut self, id: u32) -> Self {
        let name = self.program.take().map(|p| p.1).unwrap_or_default();
        self.program = Some((Some(id), name));
        self
    }

    /// The request's `{{my.…}}` tokens: they override the program's
    /// defaults, whenever given.
    pub fn request_tokens<K, V>(mut self, tokens: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: Into<TokenValue>,
    {
        for (token, value) in tokens {
            self.my.insert(my_key(token.as_ref()), value.into());
        }
        self
    }

    /// The value of a token, written without braces (`lead.Email Address`,
    /// `my.JoinLink`, `system.dateTime`), or `None` when it names nothing
    /// this context knows. A lead field the lead lacks is `None` too
    /// (rendering makes it empty).
    pub fn resolve(&self, token: &str) -> Option<TokenValue> {
        let (scope, name) = token.split_once('.')?;
        let text = |s: &str| Some(TokenValue::Text(s.to_owned()));
        match scope.trim().to_ascii_lowercase().as_str() {
            "lead" | "company" => self.lead.get(&lead_key(name)).cloned(),
            "my" => self.my.get(&my_key(name)).cloned(),
            "system" => match normalize(name).as_str() {
                "datetime" => text(&self.now.format("%Y-%m-%d %H:%M:%S").to_string()),
                "date" => text(&self.now.format("%Y-%m-%d").to_string()),
                "time" => text(&self.now.format("%H:%M:%S").to_string()),
                _ => None,
            },
            "campaign" => {
                let (id, campaign) = self.campaign.as_ref()?;
                match normalize(name).as_str() {
                    "id" => Some(TokenValue::Raw(id.to_string())),
                    "name" => text(campaign),
                    _ => None,
                }
            }
            "program" => {
                let (id, program) = self.program.as_ref()?;
                match normalize(name).as_str() {
                    "id" => id.map(|id| TokenValue::Raw(id.to_string())),
                    "name" => text(program),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Whether `token` is a lead (or company) token: unknown lead fields
    /// render empty, other unknown tokens stay as written.
    pub(crate) fn is_lead_token(token: &str) -> bool {
        token.split_once('.').is_some_and(|(scope, _)| {
            let scope = scope.trim();
            scope.eq_ignore_ascii_case("lead") || scope.eq_ignore_ascii_case("company")
        })
    }
}

/// The key a lead field is stored and looked up under.
fn lead_key(name: &str) -> String {
    let name = normalize(name);
    DISPLAY_NAMES
        .iter()
        .find(|(display, _)| *display == name)
        .map_or(name, |(_, rest)| (*rest).to_owned())
}
