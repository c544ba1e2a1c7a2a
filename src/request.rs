//! The domain model: what a campaign request is, free of HTTP and XML.
//!
//! A [`CampaignRequest`] is built once, validated once, and can then be sent
//! by any [`CampaignRequester`](crate::CampaignRequester). Everything that can
//! be checked before sending is checked when it is built, so a request that
//! exists is a request Marketo's parameter rules accept.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::Error;

/// Marketo takes at most this many lead keys in one call and silently ignores
/// the rest; clients split larger requests into chunks of this size.
pub const MAX_LEADS_PER_CALL: usize = 100;

/// The type of a lead key, as SOAP's `LeadKeyRef` enumeration names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeadKeyType {
    /// Marketo lead id (a number).
    Idnum,
    /// Munchkin cookie.
    Cookie,
    /// Email address.
    Email,
    /// Email address of the lead owner.
    LeadOwnerEmail,
    /// Salesforce account id.
    SfdcAccountId,
    /// Salesforce contact id.
    SfdcContactId,
    /// Salesforce lead id.
    SfdcLeadId,
    /// Salesforce lead owner id.
    SfdcLeadOwnerId,
    /// Salesforce opportunity id.
    SfdcOpptyId,
}

impl LeadKeyType {
    /// Every key type, in schema order.
    pub const ALL: [LeadKeyType; 9] = [
        LeadKeyType::Idnum,
        LeadKeyType::Cookie,
        LeadKeyType::Email,
        LeadKeyType::LeadOwnerEmail,
        LeadKeyType::SfdcAccountId,
        LeadKeyType::SfdcContactId,
        LeadKeyType::SfdcLeadId,
        LeadKeyType::SfdcLeadOwnerId,
        LeadKeyType::SfdcOpptyId,
    ];

    /// The name on the wire, e.g. `EMAIL`.
    ///
    /// ```
    /// use marketo_campaign::LeadKeyType;
    /// assert_eq!(LeadKeyType::SfdcLeadId.as_str(), "SFDCLEADID");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            LeadKeyType::Idnum => "IDNUM",
            LeadKeyType::Cookie => "COOKIE",
            LeadKeyType::Email => "EMAIL",
            LeadKeyType::LeadOwnerEmail => "LEADOWNEREMAIL",
            LeadKeyType::SfdcAccountId => "SFDCACCOUNTID",
            LeadKeyType::SfdcContactId => "SFDCCONTACTID",
            LeadKeyType::SfdcLeadId => "SFDCLEADID",
            LeadKeyType::SfdcLeadOwnerId => "SFDCLEADOWNERID",
            LeadKeyType::SfdcOpptyId => "SFDCOPPTYID",
        }
    }
}

impl LeadKeyType {
    /// The longest value a key of this type may have, in characters
    /// (Unicode scalar values). [`LeadKey::new`] refuses longer values
    /// before anything is sent: Marketo cannot hold them, so no lead can
    /// answer to them, and a megabyte-long key would only make the request
    /// (and the answer that quotes it) huge.
    ///
    /// | Type | Limit | Where it comes from |
    /// |---|---|---|
    /// | `IDNUM` | 10 | Marketo lead ids are 32-bit: `Lead.id` is `integer`, `format: int32` in Marketo's REST Swagger (`swagger-mapi.json`), so at most `2147483647` (checked as a number too) |
    /// | `EMAIL`, `LEADOWNEREMAIL` | 255 | Marketo's *Field Types* (developer docs, REST › Lead Database): email fields are String fields, "up to 255 characters"; `describe.json` gives `length: 255` |
    /// | `COOKIE` | 4096 | the Munchkin cookie `_mkto_trk` is a browser cookie, and RFC 6265 §6.1 sizes a cookie (name, value and attributes together) at 4096 bytes; its value (`id:123-ABC-456&token:_mch-…`) is ASCII, so bytes and characters agree |
    /// | `SFDC…ID` (all five) | 18 | Salesforce record ids are 15 characters (case-sensitive) or 18 (case-safe), Salesforce SOAP API Developer Guide, *Field Types › ID* |
    ///
    /// ```
    /// use marketo_campaign::{LeadKey, LeadKeyType};
    /// assert_eq!(LeadKeyType::Email.max_value_chars(), 255);
    /// assert!(LeadKey::email(format!("{}@example.com", "a".repeat(243))).is_ok());
    /// assert!(LeadKey::email(format!("{}@example.com", "a".repeat(244))).is_err());
    /// assert!(LeadKey::new(LeadKeyType::SfdcLeadId, "00Q5e00000AbCdEFGH").is_ok());
    /// assert!(LeadKey::new(LeadKeyType::SfdcLeadId, "00Q5e00000AbCdEFGHI").is_err());
    /// ```
    pub fn max_value_chars(self) -> usize {
        match self {
            LeadKeyType::Idnum => 10,
            LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => 255,
            LeadKeyType::Cookie => 4096,
            LeadKeyType::SfdcAccountId
            | LeadKeyType::SfdcContactId
            | LeadKeyType::SfdcLeadId
            | LeadKeyType::SfdcLeadOwnerId
            | LeadKeyType::SfdcOpptyId => 18,
        }
    }

    /// Why [`max_value_chars`](LeadKeyType::max_value_chars) is what it is,
    /// for error messages.
    fn limit_source(self) -> &'static str {
        match self {
            LeadKeyType::Idnum => "Marketo lead ids are 32-bit integers",
            LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => {
                "Marketo's email fields hold at most 255 characters"
            }
            LeadKeyType::Cookie => "a browser cookie holds at most 4096 bytes (RFC 6265)",
            _ => "Salesforce ids have 15 or 18 characters",
        }
    }
}

impl LeadKeyType {
    /// The type whose wire name is exactly `s` (upper case, as written
    /// nearly always): one comparison instead of a case-insensitive scan.
    fn from_wire_name(s: &str) -> Option<Self> {
        // By length, then one fixed-size compare per candidate.
        let is = |name: &str| s.as_bytes() == name.as_bytes();
        let key_type = match s.len() {
            5 if is("EMAIL") => LeadKeyType::Email,
            5 if is("IDNUM") => LeadKeyType::Idnum,
            6 if is("COOKIE") => LeadKeyType::Cookie,
            10 if is("SFDCLEADID") => LeadKeyType::SfdcLeadId,
            11 if is("SFDCOPPTYID") => LeadKeyType::SfdcOpptyId,
            13 if is("SFDCACCOUNTID") => LeadKeyType::SfdcAccountId,
            13 if is("SFDCCONTACTID") => LeadKeyType::SfdcContactId,
            14 if is("LEADOWNEREMAIL") => LeadKeyType::LeadOwnerEmail,
            15 if is("SFDCLEADOWNERID") => LeadKeyType::SfdcLeadOwnerId,
            _ => return None,
        };
        Some(key_type)
    }
}

impl fmt::Display for LeadKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LeadKeyType {
    type Err = Error;

    /// Parses a wire name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(key_type) = LeadKeyType::from_wire_name(s) {
            return Ok(key_type);
        }
        LeadKeyType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(
                    "lead key type",
                    format!(
                        "{} is not one of {}",
                        shown(s),
                        LeadKeyType::ALL.map(|t| t.as_str()).join(", ")
                    ),
                )
            })
    }
}

/// One lead, named by a key of some type.
///
/// ```
/// use marketo_campaign::{LeadKey, LeadKeyType};
/// let key: LeadKey = "EMAIL:lead@company.com".parse()?;
/// assert_eq!(key.key_type(), LeadKeyType::Email);
/// assert_eq!(key.value(), "lead@company.com");
/// assert!(LeadKey::new(LeadKeyType::Email, "  ").is_err());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Clone)]
pub struct LeadKey(Repr);

/// The longest value a key holds in place, in bytes: ids, Salesforce ids
/// and short email addresses. With the type and length in front, a key
/// stays 32 bytes.
const INLINE: usize = 24;

/// The bytes of a value held in place, word-aligned: reading them back
/// as a `str` (which, without `unsafe`, checks them again) then goes a
/// word at a time.
#[derive(Clone, Copy)]
#[repr(align(8))]
struct InlineBytes([u8; INLINE]);

/// A key's type and value. Short values live in the key itself, so
/// building one allocates nothing and a clone is a copy; longer ones are
/// shared, so chunk reports and retries clone keys without copying them.
#[derive(Clone)]
enum Repr {
    /// A value of at most [`INLINE`] bytes: `bytes[..len]`, the rest zero.
    Inline {
        key_type: LeadKeyType,
        len: u8,
        bytes: InlineBytes,
    },
    /// A longer value.
    Shared {
        key_type: LeadKeyType,
        value: std::sync::Arc<str>,
    },
}

impl Repr {
    /// `value`, in place when it fits.
    fn new(key_type: LeadKeyType, value: &str) -> Self {
        match u8::try_from(value.len()) {
            Ok(len) if value.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..value.len()].copy_from_slice(value.as_bytes());
                Repr::Inline {
                    key_type,
                    len,
                    bytes: InlineBytes(bytes),
                }
            }
            _ => Repr::Shared {
                key_type,
                value: value.into(),
            },
        }
    }
}

impl LeadKey {
    /// A key, validated: the value must not be blank, must be valid XML 1.0
    /// text, must not be longer than its type's
    /// [`max_value_chars`](LeadKeyType::max_value_chars), and an `IDNUM`
    /// must be a positive 32-bit integer.
    pub fn new(key_type: LeadKeyType, value: impl Into<String>) -> Result<Self, Error> {
        LeadKey::checked(key_type, &value.into())
    }

    /// [`new`](LeadKey::new) from a borrowed value: no allocation for a
    /// value that fits in the key, one for a longer one.
    pub(crate) fn checked(key_type: LeadKeyType, value: &str) -> Result<Self, Error> {
        let field = || format!("lead key {key_type}:{}", shown(value));
        // Blank: `trim()` would leave nothing; this stops at the first
        // non-blank character instead of trimming both ends.
        if value.chars().all(char::is_whitespace) {
            return Err(Error::invalid(field(), "the value is empty"));
        }
        check_length(value, key_type.max_value_chars(), key_type.limit_source())
            .map_err(|reason| Error::invalid(field(), reason))?;
        check_xml_text(value).map_err(|reason| Error::invalid(field(), reason))?;
        if key_type == LeadKeyType::Idnum && parse_positive_id(value).is_none() {
            return Err(Error::invalid(
                field(),
                "an IDNUM must be a positive integer written with digits only, e.g. 1002200",
            ));
        }
        Ok(LeadKey(Repr::new(key_type, value)))
    }

    /// A Marketo lead id key (`IDNUM`).
    pub fn id(id: u32) -> Result<Self, Error> {
        if id == 0 || id > i32::MAX as u32 {
            // Refused with the same words as the text "0" or "3000000000".
            return LeadKey::checked(LeadKeyType::Idnum, &id.to_string());
        }
        // In range: its digits are a valid IDNUM, nothing to check or parse.
        let mut digits = [0u8; 10];
        Ok(LeadKey(Repr::new(
            LeadKeyType::Idnum,
            decimal(id, &mut digits),
        )))
    }

    /// An `EMAIL` key.
    pub fn email(address: impl Into<String>) -> Result<Self, Error> {
        LeadKey::new(LeadKeyType::Email, address)
    }

    /// The key's type.
    #[inline]
    pub fn key_type(&self) -> LeadKeyType {
        match &self.0 {
            Repr::Inline { key_type, .. } | Repr::Shared { key_type, .. } => *key_type,
        }
    }

    /// The key's value as bytes (its UTF-8), without checking them again
    /// as [`value`](LeadKey::value) must to give a `str`: for writers that
    /// copy it.
    #[inline]
    pub(crate) fn value_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes, .. } => bytes.0.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Shared { value, .. } => value.as_bytes(),
        }
    }

    /// An `IDNUM` key's id (its digits, checked when the key was made),
    /// read from the bytes it holds; `None` for a key of another type.
    #[inline]
    pub(crate) fn id_number(&self) -> Option<u32> {
        if self.key_type() != LeadKeyType::Idnum {
            return None;
        }
        parse_positive_id_bytes(self.value_bytes())
    }

    /// The key's value, as given.
    #[inline]
    pub fn value(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes, .. } => std::str::from_utf8(&bytes.0[..usize::from(*len)])
                .unwrap_or_else(|_| unreachable!("the bytes of a str, copied whole")),
            Repr::Shared { value, .. } => value,
        }
    }
}

// By type and value, as the derived impls of `{ key_type, value: Arc<str> }`
// were; where the value is kept does not matter.
impl PartialEq for LeadKey {
    fn eq(&self, other: &Self) -> bool {
        self.key_type() == other.key_type() && self.value() == other.value()
    }
}

impl Eq for LeadKey {}

impl std::hash::Hash for LeadKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key_type().hash(state);
        self.value().hash(state);
    }
}

impl fmt::Debug for LeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeadKey")
            .field("key_type", &self.key_type())
            .field("value", &self.value())
            .finish()
    }
}

impl fmt::Display for LeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.key_type(), self.value())
    }
}

impl FromStr for LeadKey {
    type Err = Error;

    /// Parses `TYPE:VALUE`, e.g. `EMAIL:lead@company.com` or `IDNUM:1002200`.
    fn from_str(s: &str) -> Result<Self, Error> {
        // The first `:` (ASCII, so its first byte), as `split_once` finds it;
        // the type name before it is short, a byte loop beats `memchr`.
        let Some(colon) = s.bytes().position(|b| b == b':') else {
            return Err(Error::invalid(
                format!("lead {}", shown(s)),
                "expected TYPE:VALUE, e.g. EMAIL:lead@company.com",
            ));
        };
        let (kind, value) = (&s[..colon], &s[colon + 1..]);
        let key_type = match LeadKeyType::from_wire_name(kind) {
            Some(key_type) => key_type,
            None => kind.trim().parse()?,
        };
        LeadKey::checked(key_type, value)
    }
}

/// Where the request comes from, SOAP's `ReqCampSourceType`. REST has no
/// equivalent and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Source {
    /// A web-service integration (the default).
    #[default]
    Mktows,
    /// A sales tool.
    Sales,
}

impl Source {
    /// The name on the wire: `MKTOWS` or `SALES`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mktows => "MKTOWS",
            Source::Sales => "SALES",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.eq_ignore_ascii_case("MKTOWS") {
            Ok(Source::Mktows)
        } else if s.eq_ignore_ascii_case("SALES") {
            Ok(Source::Sales)
        } else {
            Err(Error::invalid(
                "source",
                format!("{} is not MKTOWS or SALES", shown(s)),
            ))
        }
    }
}

/// A program token (`{{my.Name}}`) and the value it takes for this run.
///
/// ```
/// use marketo_campaign::ProgramToken;
/// let token = ProgramToken::new("{{my.WebinarTitle}}", "Rust & SOAP")?;
/// assert_eq!(token.name(), "{{my.WebinarTitle}}");
/// assert!(ProgramToken::new("WebinarTitle", "x").is_err());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProgramToken {
    name: String,
    value: String,
}

impl ProgramToken {
    /// The longest token value, in characters: Marketo's limit for Text
    /// program tokens, 524,288 characters (UTF-8) or 2 MB (Marketo Engage
    /// docs, *Understanding My Tokens in a Program*, "Text"). Rich-text
    /// tokens cannot be set through a campaign request, and the other token
    /// types (number, date, score) are far shorter.
    pub const MAX_VALUE_CHARS: usize = 524_288;

    /// A token, validated: the name must be `{{my.Name}}` with a non-blank
    /// `Name` free of braces and control characters; the value must be valid
    /// XML 1.0 text (it may be empty) of at most
    /// [`MAX_VALUE_CHARS`](ProgramToken::MAX_VALUE_CHARS) characters.
    ///
    /// ```
    /// use marketo_campaign::ProgramToken;
    /// let most = "x".repeat(ProgramToken::MAX_VALUE_CHARS);
    /// assert!(ProgramToken::new("{{my.Body}}", most.as_str()).is_ok());
    /// assert!(ProgramToken::new("{{my.Body}}", most + "x").is_err());
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        let value = value.into();
        let field = || format!("token {}", shown(&name));
        let inner = name
            .strip_prefix("{{my.")
            .and_then(|rest| rest.strip_suffix("}}"))
            .ok_or_else(|| Error::invalid(field(), "a token name has the form {{my.Name}}"))?;
        if inner.trim().is_empty()
            || inner.contains(['{', '}'])
            || inner.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                field(),
                "the name inside {{my.…}} must be non-blank, without braces or control characters",
            ));
        }
        check_xml_text(&name).map_err(|reason| Error::invalid(field(), reason))?;
        check_length(
            &value,
            ProgramToken::MAX_VALUE_CHARS,
            "Marketo's text tokens hold at most 524,288 characters",
        )
        .map_err(|reason| Error::invalid(field(), format!("its value: {reason}")))?;
        check_xml_text(&value).map_err(|reason| Error::invalid(field(), reason))?;
        Ok(ProgramToken { name, value })
    }

    /// The token's name, `{{my.Name}}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token's value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for ProgramToken {
    type Err = Error;

    /// Parses `{{my.Name}}=value` (the value may contain `=`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let (name, value) = s.split_once("}}=").ok_or_else(|| {
            Error::invalid(format!("token {}", shown(s)), "expected {{my.Name}}=value")
        })?;
        ProgramToken::new(format!("{name}}}}}"), value)
    }
}

/// Which campaign to run: by id (with program tokens, possibly none), or by
/// name within a program (with program tokens).
///
/// SOAP's `requestCampaign` is narrower: `campaignId` alone, or
/// `campaignName` + `programName` + `programTokenList` (which may be empty).
/// So [`SoapClient`](crate::SoapClient) refuses an id *with* tokens as
/// [not sent](crate::Delivery::NotSent) (it cannot express it), and
/// [`Fallback`](crate::Fallback) or `--backend auto` serve it over REST,
/// whose `trigger.json` takes an id with tokens. No other mix can be built.
///
/// ```
/// use marketo_campaign::{CampaignTarget, ProgramToken};
/// // Marketo's REST tutorial: campaign 1234 with three My Tokens.
/// let target = CampaignTarget::id_with_tokens(1234, [
///     ProgramToken::new("{{my.WebinarTitle}}", "Migrating off SOAP")?,
///     ProgramToken::new("{{my.JoinLink}}", "https://example.com/join")?,
/// ]);
/// assert_eq!(target.campaign_id(), Some(1234));
/// assert_eq!(target.tokens().len(), 2);
/// assert_eq!(CampaignTarget::id(4496).tokens(), &[]);
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CampaignTarget {
    /// A campaign by its id, with program tokens (possibly none; SOAP can
    /// send none).
    Id {
        /// The Smart Campaign's id.
        id: u32,
        /// Program tokens for this run; may be empty.
        tokens: Vec<ProgramToken>,
    },
    /// A campaign by name within a program, with program tokens.
    Named {
        /// The Smart Campaign's name.
        campaign: String,
        /// The name of the program that holds it.
        program: String,
        /// Program tokens for this run; may be empty.
        tokens: Vec<ProgramToken>,
    },
    /// An Adobe Journey Optimizer API-triggered campaign, by its AJO id
    /// (a string), with program tokens that become each recipient's
    /// `context`. Only [`AjoClient`](crate::AjoClient) runs it; SOAP and
    /// REST refuse it as invalid input before sending anything.
    Ajo {
        /// The AJO campaign id.
        campaign_id: String,
        /// Program tokens for this run (`{{my.Name}}` becomes
        /// `context.Name`); may be empty.
        tokens: Vec<ProgramToken>,
    },
}

impl CampaignTarget {
    /// An Adobe Journey Optimizer campaign by its id, with program tokens
    /// (each `{{my.Name}}` becomes the recipient's `context.Name`). Only
    /// [`AjoClient`](crate::AjoClient) serves it.
    ///
    /// ```
    /// use marketo_campaign::{CampaignTarget, ProgramToken};
    /// let target = CampaignTarget::ajo("3d9a7b1c-webinar", [ProgramToken::new("{{my.WebinarTitle}}", "Rust")?]);
    /// assert_eq!(target.ajo_campaign_id(), Some("3d9a7b1c-webinar"));
    /// assert_eq!(target.campaign_id(), None);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn ajo(
        campaign_id: impl Into<String>,
        tokens: impl IntoIterator<Item = ProgramToken>,
    ) -> Self {
        CampaignTarget::Ajo {
            campaign_id: campaign_id.into(),
            tokens: tokens.into_iter().collect(),
        }
    }

    /// The AJO campaign id, when the target names one.
    pub fn ajo_campaign_id(&self) -> Option<&str> {
        match self {
            CampaignTarget::Ajo { campaign_id, .. } => Some(campaign_id),
            _ => None,
        }
    }

    /// A campaign by id, without tokens: SOAP's `campaignId` alone.
    pub fn id(id: u32) -> Self {
        CampaignTarget::Id {
            id,
            tokens: Vec::new(),
        }
    }

    /// A campaign by id with program tokens (REST's `trigger.json` with
    /// `tokens`; SOAP cannot send it).
    pub fn id_with_tokens(id: u32, tokens: impl IntoIterator<Item = ProgramToken>) -> Self {
        CampaignTarget::Id {
            id,
            tokens: tokens.into_iter().collect(),
        }
    }

    /// A named target with its tokens.
    pub fn named(
        campaign: impl Into<String>,
        program: impl Into<String>,
        tokens: impl IntoIterator<Item = ProgramToken>,
    ) -> Self {
        CampaignTarget::Named {
            campaign: campaign.into(),
            program: program.into(),
            tokens: tokens.into_iter().collect(),
        }
    }

    /// The program tokens of this run, in the order given.
    pub fn tokens(&self) -> &[ProgramToken] {
        match self {
            CampaignTarget::Id { tokens, .. }
            | CampaignTarget::Named { tokens, .. }
            | CampaignTarget::Ajo { tokens, .. } => tokens,
        }
    }

    /// The campaign id, when the target names one.
    pub fn campaign_id(&self) -> Option<u32> {
        match self {
            CampaignTarget::Id { id, .. } => Some(*id),
            CampaignTarget::Named { .. } | CampaignTarget::Ajo { .. } => None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        match self {
            CampaignTarget::Id { id, .. } => {
                if *id == 0 || *id > i32::MAX as u32 {
                    return Err(Error::invalid(
                        "campaign id",
                        format!("{id} is not a positive 32-bit integer"),
                    ));
                }
            }
            CampaignTarget::Named {
                campaign, program, ..
            } => {
                for (field, value) in [("campaign name", campaign), ("program name", program)] {
                    if value.trim().is_empty() {
                        return Err(Error::invalid(field, "it is empty"));
                    }
                    check_xml_text(value).map_err(|reason| Error::invalid(field, reason))?;
                }
            }
            CampaignTarget::Ajo { campaign_id, .. } => {
                if campaign_id.trim().is_empty() {
                    return Err(Error::invalid("AJO campaign id", "it is empty"));
                }
                if campaign_id.len() > 256 || campaign_id.chars().any(char::is_control) {
                    return Err(Error::invalid(
                        "AJO campaign id",
                        "at most 256 bytes, without control characters",
                    ));
                }
            }
        }
        let tokens = self.tokens();
        for (i, token) in tokens.iter().enumerate() {
            if tokens[..i].iter().any(|t| t.name == token.name) {
                return Err(Error::invalid(
                    format!("token {:?}", token.name),
                    "it is given twice",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for CampaignTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CampaignTarget::Id { id, tokens } if tokens.is_empty() => write!(f, "campaign {id}"),
            CampaignTarget::Id { id, tokens } => {
                write!(f, "campaign {id} with {} token(s)", tokens.len())
            }
            CampaignTarget::Named {
                campaign, program, ..
            } => write!(f, "campaign {campaign:?} in program {program:?}"),
            CampaignTarget::Ajo { campaign_id, .. } => {
                write!(f, "AJO campaign {campaign_id:?}")
            }
        }
    }
}

/// A validated request to run a Smart Campaign for some leads.
///
/// ```
/// use marketo_campaign::{CampaignRequest, CampaignTarget, LeadKey, ProgramToken, Source};
/// let by_id = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
/// assert_eq!(by_id.leads().len(), 1);
///
/// let named = CampaignRequest::new(
///     CampaignTarget::named("Send Webinar Reminder", "Webinars",
///         [ProgramToken::new("{{my.WebinarTitle}}", "Rust")?]),
///     [LeadKey::id(1002200)?],
/// )?.with_source(Source::Sales);
/// assert_eq!(named.source(), Source::Sales);
///
/// // No leads: refused before anything is sent.
/// assert!(CampaignRequest::new(CampaignTarget::id(4496), []).is_err());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRequest {
    target: CampaignTarget,
    /// Shared with the reports of the request's chunks, which name their
    /// leads as ranges of it instead of copies.
    leads: Arc<[LeadKey]>,
    source: Source,
}

impl CampaignRequest {
    /// A request, validated: the target's names and tokens, and a non-empty
    /// lead list. Any number of leads is accepted; clients send them in
    /// chunks of [`MAX_LEADS_PER_CALL`].
    pub fn new(
        target: CampaignTarget,
        leads: impl IntoIterator<Item = LeadKey>,
    ) -> Result<Self, Error> {
        target.validate()?;
        let leads: Arc<[LeadKey]> = leads.into_iter().collect();
        if leads.is_empty() {
            return Err(Error::invalid("lead list", "it is empty"));
        }
        Ok(CampaignRequest {
            target,
            leads,
            source: Source::default(),
        })
    }

    /// The same request with another [`Source`] (default `MKTOWS`).
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// The campaign to run.
    pub fn target(&self) -> &CampaignTarget {
        &self.target
    }

    /// The leads, in the order given.
    pub fn leads(&self) -> &[LeadKey] {
        &self.leads
    }

    /// The source.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The leads in chunks of at most [`MAX_LEADS_PER_CALL`], in order.
    pub fn chunks(&self) -> std::slice::Chunks<'_, LeadKey> {
        self.chunks_of(MAX_LEADS_PER_CALL)
    }

    /// The leads in chunks of at most `max_leads_per_call` (taken as 1 when
    /// 0), in order: how a backend that declares that
    /// [size](crate::CampaignRequester::max_leads_per_call) splits this
    /// request.
    ///
    /// ```
    /// use marketo_campaign::{CampaignRequest, CampaignTarget, LeadKey};
    /// let request = CampaignRequest::new(CampaignTarget::id(1), (1..=45).map(|i| LeadKey::id(i).unwrap()))?;
    /// let sizes: Vec<usize> = request.chunks_of(20).map(<[_]>::len).collect();
    /// assert_eq!(sizes, [20, 20, 5]);
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn chunks_of(&self, max_leads_per_call: usize) -> std::slice::Chunks<'_, LeadKey> {
        self.leads.chunks(max_leads_per_call.max(1))
    }

    /// The leads, shared.
    pub(crate) fn shared_leads(&self) -> &Arc<[LeadKey]> {
        &self.leads
    }

    /// The same target and source for a subset of the leads (used to send
    /// what remains after a partial failure).
    pub fn with_leads(&self, leads: impl IntoIterator<Item = LeadKey>) -> Result<Self, Error> {
        Ok(CampaignRequest::new(self.target.clone(), leads)?.with_source(self.source))
    }
}

/// A positive `i32`-range integer in canonical form (digits only, no
/// leading zero, no sign), the domain of Marketo ids. Other spellings are
/// refused: SOAP compares them as text, REST as numbers, so `+7` or `007`
/// would name different leads on the two APIs.
pub(crate) fn parse_positive_id(s: &str) -> Option<u32> {
    parse_positive_id_bytes(s.as_bytes())
}

/// [`parse_positive_id`] of the bytes of a `str`.
fn parse_positive_id_bytes(s: &[u8]) -> Option<u32> {
    // At most 10 digits (i32::MAX has 10), so the sum cannot overflow.
    if s.is_empty() || s.len() > 10 || s[0] == b'0' {
        return None;
    }
    let mut id: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        id = id * 10 + u64::from(b - b'0');
    }
    u32::try_from(id).ok().filter(|&id| id <= i32::MAX as u32)
}

/// Longest part of a value quoted in an error message.
const SHOWN_CHARS: usize = 64;

/// `value` quoted for an error message: whole when short, else its first
/// [`SHOWN_CHARS`] characters and its length, so that refusing a megabyte
/// value does not print it.
pub(crate) fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?}… ({} characters)",
            &value[..cut],
            value.chars().count()
        ),
    }
}

/// Checks that `value` has at most `max` characters; `why` names the limit.
fn check_length(value: &str, max: usize, why: &str) -> Result<(), String> {
    // A character takes at least one byte: short values need no counting.
    if value.len() <= max {
        return Ok(());
    }
    match value.chars().count() {
        chars if chars <= max => Ok(()),
        chars => Err(format!(
            "it has {chars} characters, more than {max} ({why})"
        )),
    }
}

/// Whether any byte of `bytes` is a `hit`: without a branch per byte, 16
/// bytes at a time (the compiler makes each block a few vector compares),
/// the last block overlapping the one before; short text byte by byte.
#[inline]
fn any_byte(bytes: &[u8], hit: impl Fn(u8) -> bool) -> bool {
    let any = |bytes: &[u8]| bytes.iter().fold(false, |any, &b| any | hit(b));
    if bytes.len() < 16 {
        return any(bytes);
    }
    let block = |at: usize| any(&bytes[at..at + 16]);
    // Whole blocks, then the last 16 bytes (overlapping the last block).
    (0..bytes.len() / 16).any(|i| block(16 * i)) || block(bytes.len() - 16)
}

/// `n` in decimal, written into `digits`.
pub(crate) fn decimal(mut n: u32, digits: &mut [u8; 10]) -> &str {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&digits[at..]).unwrap_or_else(|_| unreachable!("ASCII digits"))
}

/// Checks that `s` only holds characters XML 1.0 can carry (`Char` production).
pub(crate) fn check_xml_text(s: &str) -> Result<(), String> {
    // A `str` holds no surrogates, so the only scalar values outside `Char`
    // are the C0 controls other than tab, LF and CR, and U+FFFE and U+FFFF
    // (UTF-8 `EF BF BE`, `EF BF BF`). Text with no byte below 0x20 but
    // those three, and no 0xEF, is clean without decoding a character.
    let suspect = |b: u8| ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF);
    if !any_byte(s.as_bytes(), suspect) {
        return Ok(());
    }
    match s.chars().find(|&c| !is_xml_char(c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "it holds U+{:04X}, which XML 1.0 cannot carry",
            c as u32
        )),
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_keys_parse_and_validate() {
        let key: LeadKey = "email:a@b.c".parse().unwrap();
        assert_eq!(key.key_type(), LeadKeyType::Email);
        assert_eq!(key.to_string(), "EMAIL:a@b.c");
        assert!("EMAIL".parse::<LeadKey>().is_err());
        assert!("NOPE:x".parse::<LeadKey>().is_err());
        assert!("IDNUM:abc".parse::<LeadKey>().is_err());
        assert!("IDNUM:0".parse::<LeadKey>().is_err());
        assert!("IDNUM:2147483648".parse::<LeadKey>().is_err());
        for odd in ["IDNUM:+7", "IDNUM:007", "IDNUM: 7", "IDNUM:7 ", "IDNUM:-7"] {
            assert!(odd.parse::<LeadKey>().is_err(), "{odd}");
        }
        assert!(LeadKey::new(LeadKeyType::Email, "a\u{0}b").is_err());
        assert!(LeadKey::new(LeadKeyType::Email, "a\u{FFFE}b").is_err());
        // Values keep colons after the first one and everything XML can escape.
        let key: LeadKey = "COOKIE:id:123&token=<x>\"'é".parse().unwrap();
        assert_eq!(key.value(), "id:123&token=<x>\"'é");
    }

    #[test]
    fn lead_values_over_marketo_field_limits_are_refused() {
        let limits = [
            (LeadKeyType::Email, 255),
            (LeadKeyType::LeadOwnerEmail, 255),
            (LeadKeyType::Cookie, 4096),
            (LeadKeyType::SfdcAccountId, 18),
            (LeadKeyType::SfdcContactId, 18),
            (LeadKeyType::SfdcLeadId, 18),
            (LeadKeyType::SfdcLeadOwnerId, 18),
            (LeadKeyType::SfdcOpptyId, 18),
        ];
        for (key_type, max) in limits {
            assert_eq!(key_type.max_value_chars(), max, "{key_type}");
            // Counted in characters, not bytes.
            let at_limit = "é".repeat(max);
            assert!(
                LeadKey::new(key_type, at_limit.as_str()).is_ok(),
                "{key_type}"
            );
            let err = LeadKey::new(key_type, at_limit + "é").unwrap_err();
            assert!(
                matches!(err, Error::InvalidInput { .. }),
                "{key_type}: {err:?}"
            );
            assert!(
                err.to_string().contains(&format!("more than {max}")),
                "{err}"
            );
        }
        assert!(LeadKey::new(LeadKeyType::Idnum, "2147483647").is_ok());
        assert!(LeadKey::new(LeadKeyType::Idnum, "21474836470").is_err());
        assert!(LeadKey::new(LeadKeyType::Idnum, "1".repeat(1000)).is_err());
    }

    #[test]
    fn a_megabyte_value_is_refused_without_being_quoted() {
        let huge = "a".repeat(1 << 20);
        for key_type in LeadKeyType::ALL {
            let err = LeadKey::new(key_type, huge.as_str()).unwrap_err();
            let message = err.to_string();
            assert!(message.len() < 400, "{key_type}: {} bytes", message.len());
            assert!(message.contains("1048576 characters"), "{message}");
            assert_eq!(err.delivery(), crate::Delivery::NotSent);
        }
        let err = format!("EMAIL:{huge}").parse::<LeadKey>().unwrap_err();
        assert!(err.to_string().len() < 400);
        let err = ProgramToken::new("{{my.X}}", "v".repeat(ProgramToken::MAX_VALUE_CHARS + 1))
            .unwrap_err();
        assert!(err.to_string().contains("more than 524288"), "{err}");
        assert!(err.to_string().len() < 400);
        let err = format!("{{{{my.X}}}}={huge}{huge}")
            .parse::<ProgramToken>()
            .unwrap_err();
        assert!(err.to_string().len() < 400);
        let err = ProgramToken::new(format!("{{{{my.{huge}"), "v").unwrap_err();
        assert!(
            err.to_string().len() < 400,
            "a huge name is not quoted whole"
        );
    }

    #[test]
    fn token_values_up_to_the_text_token_limit_are_kept() {
        let most = "€".repeat(ProgramToken::MAX_VALUE_CHARS);
        let token = ProgramToken::new("{{my.Body}}", most.as_str()).unwrap();
        assert_eq!(token.value(), most);
        assert!(ProgramToken::new("{{my.Body}}", most + "x").is_err());
        assert!(ProgramToken::new("{{my.Body}}", "").is_ok());
    }

    #[test]
    fn tokens_validate_names() {
        for bad in [
            "my.X",
            "{{my.}}",
            "{{my. }}",
            "{{my.a}b}}",
            "{{your.X}}",
            "{{my.X}",
        ] {
            assert!(ProgramToken::new(bad, "v").is_err(), "{bad} accepted");
        }
        let t: ProgramToken = "{{my.Join Link}}=https://x/?a=b&c=d".parse().unwrap();
        assert_eq!(t.name(), "{{my.Join Link}}");
        assert_eq!(t.value(), "https://x/?a=b&c=d");
        assert!(ProgramToken::new("{{my.X}}", "bad\u{1}").is_err());
    }

    #[test]
    fn requests_validate_targets() {
        let lead = || vec![LeadKey::id(1).unwrap()];
        assert!(CampaignRequest::new(CampaignTarget::id(0), lead()).is_err());
        assert!(CampaignRequest::new(CampaignTarget::named("", "P", []), lead()).is_err());
        assert!(CampaignRequest::new(CampaignTarget::named("C", " ", []), lead()).is_err());
        let t = ProgramToken::new("{{my.A}}", "1").unwrap();
        assert!(
            CampaignRequest::new(CampaignTarget::named("C", "P", [t.clone(), t]), lead()).is_err()
        );
        assert!(CampaignRequest::new(CampaignTarget::named("C", "P", []), lead()).is_ok());
    }

    #[test]
    fn an_idnum_key_reads_its_id_from_its_bytes() {
        for id in [1, 7, 1002200, i32::MAX as u32] {
            assert_eq!(LeadKey::id(id).unwrap().id_number(), Some(id));
            let parsed: LeadKey = format!("IDNUM:{id}").parse().unwrap();
            assert_eq!(parsed.id_number(), Some(id));
            assert_eq!(parsed.value_bytes(), id.to_string().as_bytes());
        }
        let email = LeadKey::email("1002200@company.com").unwrap();
        assert_eq!(email.id_number(), None);
        assert_eq!(email.value_bytes(), b"1002200@company.com");
        let long = LeadKey::email(format!("{}@company.com", "x".repeat(40))).unwrap();
        assert_eq!(long.value_bytes(), long.value().as_bytes());
    }

    #[test]
    fn chunks_of_one_hundred() {
        let leads = (1..=250).map(|i| LeadKey::id(i).unwrap());
        let req = CampaignRequest::new(CampaignTarget::id(1), leads).unwrap();
        let sizes: Vec<usize> = req.chunks().map(<[_]>::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let sizes: Vec<usize> = req.chunks_of(20).map(<[_]>::len).collect();
        assert_eq!(sizes, [20; 12].into_iter().chain([10]).collect::<Vec<_>>());
        assert_eq!(req.chunks_of(0).len(), 250, "a size of 0 is taken as 1");
    }
}

/// The fast paths (upper-case type names, one allocation per key, ids
/// written without being parsed back, ASCII text checked without decoding)
/// against lead keys built as they were before: same keys, same errors.
#[cfg(test)]
mod same_keys_as_before {
    use proptest::prelude::*;

    use super::*;
    use test_support::hostile;

    /// Lead key parsing before the fast paths, verbatim but for returning
    /// the key's parts and the error's text.
    mod reference {
        use super::super::{parse_positive_id, shown};
        use crate::{Error, LeadKeyType};

        fn limit_source(key_type: LeadKeyType) -> &'static str {
            key_type.limit_source()
        }

        pub fn parse_type(s: &str) -> Result<LeadKeyType, Error> {
            LeadKeyType::ALL
                .into_iter()
                .find(|t| t.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| {
                    Error::invalid(
                        "lead key type",
                        // A long name is cut, as the parser now cuts it.
                        format!(
                            "{} is not one of {}",
                            shown(s),
                            LeadKeyType::ALL.map(|t| t.as_str()).join(", ")
                        ),
                    )
                })
        }

        pub fn new(
            key_type: LeadKeyType,
            value: impl Into<String>,
        ) -> Result<(LeadKeyType, String), Error> {
            let value = value.into();
            let field = || format!("lead key {key_type}:{}", shown(&value));
            if value.trim().is_empty() {
                return Err(Error::invalid(field(), "the value is empty"));
            }
            check_length(&value, key_type.max_value_chars(), limit_source(key_type))
                .map_err(|reason| Error::invalid(field(), reason))?;
            check_xml_text(&value).map_err(|reason| Error::invalid(field(), reason))?;
            if key_type == LeadKeyType::Idnum && parse_positive_id(&value).is_none() {
                return Err(Error::invalid(
                    field(),
                    "an IDNUM must be a positive integer written with digits only, e.g. 1002200",
                ));
            }
            Ok((key_type, value))
        }

        pub fn id(id: u32) -> Result<(LeadKeyType, String), Error> {
            new(LeadKeyType::Idnum, id.to_string())
        }

        pub fn parse(s: &str) -> Result<(LeadKeyType, String), Error> {
            let (kind, value) = s.split_once(':').ok_or_else(|| {
                Error::invalid(
                    format!("lead {}", shown(s)),
                    "expected TYPE:VALUE, e.g. EMAIL:lead@company.com",
                )
            })?;
            new(parse_type(kind.trim())?, value)
        }

        fn check_length(value: &str, max: usize, why: &str) -> Result<(), String> {
            if value.len() <= max {
                return Ok(());
            }
            match value.chars().count() {
                chars if chars <= max => Ok(()),
                chars => Err(format!(
                    "it has {chars} characters, more than {max} ({why})"
                )),
            }
        }

        pub fn check_xml_text(s: &str) -> Result<(), String> {
            match s.chars().find(|&c| !is_xml_char(c)) {
                None => Ok(()),
                Some(c) => Err(format!(
                    "it holds U+{:04X}, which XML 1.0 cannot carry",
                    c as u32
                )),
            }
        }

        fn is_xml_char(c: char) -> bool {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        }
    }

    type Parts = Result<(LeadKeyType, String), String>;

    fn parts(key: Result<LeadKey, Error>) -> Parts {
        key.map(|k| (k.key_type(), k.value().to_owned()))
            .map_err(|e| e.to_string())
    }

    fn reference_parts(key: Result<(LeadKeyType, String), Error>) -> Parts {
        key.map_err(|e| e.to_string())
    }

    /// A type name as a caller may write it: any case, padded, or wrong.
    fn type_name() -> impl Strategy<Value = String> {
        let name = (0..LeadKeyType::ALL.len(), any::<u64>()).prop_map(|(i, case)| {
            LeadKeyType::ALL[i]
                .as_str()
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    if case >> (j % 64) & 1 == 1 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect::<String>()
        });
        prop_oneof![
            4 => name.clone(),
            1 => name.clone().prop_map(|n| format!(" {n}\t")),
            1 => name.prop_map(|n| format!("{n}X")),
            1 => hostile(),
        ]
    }

    /// Values that pass and values that fail each check.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => hostile(),
            2 => "[1-9][0-9]{0,10}",
            1 => "[0+ -]?[0-9]{1,12}",
            1 => "[a-z.]{1,20}@[a-z]{1,10}\\.com",
            1 => "[ \t\r\n]{0,3}",
            1 => any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn parsed_keys_are_as_before(kind in type_name(), value in value(), colon in any::<bool>()) {
            let raw = if colon { format!("{kind}:{value}") } else { format!("{kind}{value}") };
            prop_assert_eq!(parts(raw.parse()), reference_parts(reference::parse(&raw)));
        }

        #[test]
        fn new_keys_are_as_before(t in 0..LeadKeyType::ALL.len(), value in value()) {
            let key_type = LeadKeyType::ALL[t];
            prop_assert_eq!(
                parts(LeadKey::new(key_type, value.as_str())),
                reference_parts(reference::new(key_type, value.as_str()))
            );
        }

        #[test]
        fn id_keys_are_as_before(id in prop_oneof![
            any::<u32>(),
            Just(0u32), Just(1), Just(9), Just(10), Just(i32::MAX as u32),
            Just(i32::MAX as u32 + 1), Just(u32::MAX),
        ]) {
            prop_assert_eq!(parts(LeadKey::id(id)), reference_parts(reference::id(id)));
        }

        #[test]
        fn type_names_parse_as_before(kind in type_name()) {
            prop_assert_eq!(
                kind.parse::<LeadKeyType>().map_err(|e| e.to_string()),
                reference::parse_type(&kind).map_err(|e| e.to_string())
            );
        }

        #[test]
        fn xml_text_check_is_as_before(s in prop_oneof![hostile(), any::<String>()]) {
            prop_assert_eq!(check_xml_text(&s), reference::check_xml_text(&s));
        }
    }

    #[test]
    fn short_values_live_in_the_key_and_long_ones_are_shared() {
        assert_eq!(std::mem::size_of::<LeadKey>(), 32);
        for len in [1, INLINE - 1, INLINE, INLINE + 1, 255] {
            for value in ["c".repeat(len), format!("{}é", "c".repeat(len - 1))] {
                let key = LeadKey::new(LeadKeyType::Cookie, value.as_str()).unwrap();
                assert_eq!(key.value(), value);
                assert_eq!(key.key_type(), LeadKeyType::Cookie);
                let inline = matches!(key.0, Repr::Inline { .. });
                assert_eq!(inline, value.len() <= INLINE, "{} bytes", value.len());
                let copy = key.clone();
                assert_eq!(copy, key);
                // A clone of a long key shares its value, not a copy.
                assert_eq!(copy.value().as_ptr() == key.value().as_ptr(), !inline);
                assert_eq!(
                    format!("{copy:?}"),
                    format!("LeadKey {{ key_type: Cookie, value: {value:?} }}")
                );
                assert_ne!(
                    copy,
                    LeadKey::new(LeadKeyType::Email, value.as_str()).unwrap()
                );
            }
        }
        let hash = |key: &LeadKey| {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
        };
        let id = LeadKey::id(1002200).unwrap();
        assert_eq!(hash(&id), hash(&"IDNUM:1002200".parse().unwrap()));
        assert_eq!(id.to_string(), "IDNUM:1002200");
    }

    /// The block-wise scan sees a bad character at every position of the
    /// blocks and of the padded rest.
    #[test]
    fn xml_text_check_finds_a_bad_character_anywhere() {
        for len in 1..40 {
            for at in 0..len {
                for bad in ['\u{0}', '\u{1F}', '\u{FFFE}', '\u{FFFF}', '\t', '\u{EFFF}'] {
                    let mut text: Vec<char> = "a".repeat(len).chars().collect();
                    text[at] = bad;
                    let text: String = text.into_iter().collect();
                    assert_eq!(
                        check_xml_text(&text),
                        reference::check_xml_text(&text),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn xml_text_check_at_its_edges() {
        for s in [
            "\u{FFFD}",
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{EFFF}",
            "\u{F000}",
            "\u{1F}",
            "\u{7F}",
            "\u{80}",
            "\u{9F}",
            "a\u{0}",
            "\t\n\r",
            "\u{10FFFF}",
            "ï",
            "",
        ] {
            assert_eq!(check_xml_text(s), reference::check_xml_text(s), "{s:?}");
        }
        assert!(check_xml_text("a\u{FFFE}").is_err());
        assert!(check_xml_text("\u{EFBF}").is_ok());
    }
}
