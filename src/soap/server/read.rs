//! Reading a request envelope: the `AuthenticationHeader` and the
//! operation's parameters, as Marketo's schema lays them out.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime};

mod leads;

pub use leads::{
    ActivityQuery, DescribeMObject, GetLead, GetLeadActivity, GetLeadChanges, GetMultipleLeads,
    LeadSelector, ListOperation, ListOperationType, MergeLeads, ReceivedAttribute,
    ReceivedLeadRecord, SyncLead, SyncMultipleLeads,
};

use super::xml::{Lexer, Ns, Start, Stop};
use super::Fault;
use crate::error::{Error, SoapCode};
use crate::request::{
    shown, CampaignRequest, CampaignTarget, LeadKey, LeadKeyType, ProgramToken, Source,
    MAX_LEADS_PER_CALL,
};

/// Bounds on what [`read_envelope_with`] reads. Anything beyond them is
/// refused with fault 20012 before it costs more than a linear scan.
///
/// ```
/// use marketo_campaign::soap::ReadLimits;
/// let mut limits = ReadLimits::default();
/// limits.max_bytes = 16 << 20;
/// assert_eq!(limits.max_depth, 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadLimits {
    /// Largest envelope, in bytes. Default: 4 MiB (what the sandbox reads).
    pub max_bytes: usize,
    /// Deepest element nesting. Default: 16 (a `requestCampaign` envelope
    /// nests 6 deep).
    pub max_depth: usize,
    /// Most elements in the document. Default: 20,000.
    pub max_elements: usize,
    /// Lead keys of a `requestCampaign` kept; the rest are counted in
    /// [`ignored_keys`](RequestCampaign::ignored_keys). Default:
    /// [`MAX_LEADS_PER_CALL`], as Marketo (a server that serves them all,
    /// as the bridge does, sets `usize::MAX`).
    pub max_lead_keys: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_bytes: 4 << 20,
            max_depth: 16,
            max_elements: 20_000,
            max_lead_keys: MAX_LEADS_PER_CALL,
        }
    }
}

/// A request envelope, read: who signed it and what it asks.
///
/// Reading refuses at once (fault 20012) what is not a well-formed SOAP 1.1
/// envelope with an `AuthenticationHeader` and one operation in the mktows
/// namespace. A problem with the operation's parameters is kept in
/// [`operation`](Envelope::operation) instead, so that a server can check
/// the `SOAPAction` and the signature first, as Marketo does: an
/// unauthenticated caller learns nothing about its parameters.
///
/// Text borrows from the envelope's bytes unless it had to be decoded
/// (a reference, a CR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    auth: AuthenticationHeader<'a>,
    operation_name: Cow<'a, str>,
    operation: Result<Operation<'a>, Fault>,
}

impl<'a> Envelope<'a> {
    /// The `AuthenticationHeader`; check it with an
    /// [`Authenticator`](super::Authenticator).
    pub fn auth(&self) -> &AuthenticationHeader<'a> {
        &self.auth
    }

    /// The operation's name, from its element: `requestCampaign` for
    /// `paramsRequestCampaign`, also for operations this reader does not
    /// support (e.g. `syncLead`).
    pub fn operation_name(&self) -> &str {
        &self.operation_name
    }

    /// Checks the `SOAPAction` HTTP header against the operation: it must
    /// be `"http://www.marketo.com/mktows/<operation>"`, quoted or not.
    /// Otherwise fault 20012.
    pub fn check_soap_action(&self, soap_action: Option<&str>) -> Result<(), Fault> {
        let matches = soap_action.is_some_and(|action| {
            action
                .trim_matches('"')
                .strip_prefix(super::MKTOWS_NS)
                .is_some_and(|name| name == self.operation_name)
        });
        if matches {
            return Ok(());
        }
        Err(not_understood(format!(
            "SOAPAction {soap_action:?} does not match \"{}{}\"",
            super::MKTOWS_NS,
            self.operation_name
        )))
    }

    /// The operation and its parameters, or the fault they deserve (20012
    /// for an unsupported operation or parameters out of the schema's
    /// shape, 20110 for an illegal mix, 20109 for a missing required one).
    pub fn operation(&self) -> Result<&Operation<'a>, &Fault> {
        self.operation.as_ref()
    }

    /// [`operation`](Envelope::operation), by value.
    pub fn into_operation(self) -> Result<Operation<'a>, Fault> {
        self.operation
    }
}

/// The `ns1:AuthenticationHeader` of a request, as received.
///
/// `Debug` does not print the signature: within the timestamp window it
/// lets anyone replay the call.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticationHeader<'a> {
    user_id: Cow<'a, str>,
    signature: Cow<'a, str>,
    timestamp: Cow<'a, str>,
    audit: Option<Cow<'a, str>>,
    mode: Option<Cow<'a, str>>,
}

impl AuthenticationHeader<'_> {
    /// `mktowsUserId`.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// `requestSignature`, as sent (lowercase hex, if well formed).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// `requestTimestamp`, as sent (and signed).
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// `audit`, if sent.
    pub fn audit(&self) -> Option<&str> {
        self.audit.as_deref()
    }

    /// `mode`, if sent (reserved by Marketo; an `xs:int` as text).
    pub fn mode(&self) -> Option<&str> {
        self.mode.as_deref()
    }
}

impl fmt::Debug for AuthenticationHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationHeader")
            .field("user_id", &self.user_id)
            .field("signature", &"[redacted]")
            .field("timestamp", &self.timestamp)
            .field("audit", &self.audit)
            .field("mode", &self.mode)
            .finish()
    }
}

/// An operation this reader understands, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation<'a> {
    /// `requestCampaign`.
    RequestCampaign(RequestCampaign<'a>),
    /// `scheduleCampaign`.
    ScheduleCampaign(ScheduleCampaign<'a>),
    /// `getCampaignsForSource`.
    GetCampaignsForSource(GetCampaignsForSource<'a>),
    /// `syncLead`.
    SyncLead(SyncLead<'a>),
    /// `getLead`.
    GetLead(GetLead<'a>),
    /// `describeMObject`.
    DescribeMObject(DescribeMObject<'a>),
    /// `listOperation`.
    ListOperation(ListOperation<'a>),
    /// `getLeadActivity`.
    GetLeadActivity(GetLeadActivity<'a>),
    /// `syncMultipleLeads`.
    SyncMultipleLeads(SyncMultipleLeads<'a>),
    /// `getMultipleLeads`.
    GetMultipleLeads(GetMultipleLeads<'a>),
    /// `getLeadChanges`.
    GetLeadChanges(GetLeadChanges<'a>),
    /// `mergeLeads`.
    MergeLeads(MergeLeads<'a>),
}

/// A lead key as received (`leadList/leadKey`): a known type, and the value
/// exactly as sent (not validated: see [`RequestCampaign::to_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLeadKey<'a> {
    key_type: LeadKeyType,
    value: Cow<'a, str>,
}

impl ReceivedLeadKey<'_> {
    /// `keyType` (read ignoring ASCII case).
    pub fn key_type(&self) -> LeadKeyType {
        self.key_type
    }

    /// `keyValue`, as sent.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A program token as received (`programTokenList/attrib`), not validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedToken<'a> {
    name: Cow<'a, str>,
    value: Cow<'a, str>,
}

impl ReceivedToken<'_> {
    /// `name`, e.g. `{{my.WebinarTitle}}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `value`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target<'a> {
    Id(u32),
    Named {
        campaign: Cow<'a, str>,
        program: Cow<'a, str>,
    },
}

/// The parameters of `requestCampaign`, as received: one of SOAP's two
/// legal parameter sets (`campaignId` alone, or `programName` +
/// `campaignName` + `programTokenList`), a known `source`, lead keys of
/// known types, tokens with a name and a value.
///
/// Like Marketo, the reader keeps the first [`MAX_LEADS_PER_CALL`] lead
/// keys and ignores the rest, counting them in
/// [`ignored_keys`](RequestCampaign::ignored_keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCampaign<'a> {
    source: Source,
    target: Target<'a>,
    tokens: Vec<ReceivedToken<'a>>,
    leads: Vec<ReceivedLeadKey<'a>>,
    ignored_keys: usize,
}

impl RequestCampaign<'_> {
    /// `source`.
    pub fn source(&self) -> Source {
        self.source
    }

    /// `campaignId`, when the campaign is named by id.
    pub fn campaign_id(&self) -> Option<u32> {
        match self.target {
            Target::Id(id) => Some(id),
            Target::Named { .. } => None,
        }
    }

    /// `campaignName`, when the campaign is named by name.
    pub fn campaign_name(&self) -> Option<&str> {
        match &self.target {
            Target::Named { campaign, .. } => Some(campaign),
            Target::Id(_) => None,
        }
    }

    /// `programName`, when the campaign is named by name.
    pub fn program_name(&self) -> Option<&str> {
        match &self.target {
            Target::Named { program, .. } => Some(program),
            Target::Id(_) => None,
        }
    }

    /// `programTokenList`, in order (empty for a campaign by id).
    pub fn tokens(&self) -> &[ReceivedToken<'_>] {
        &self.tokens
    }

    /// The first [`MAX_LEADS_PER_CALL`] lead keys, in order (possibly none).
    pub fn lead_keys(&self) -> &[ReceivedLeadKey<'_>] {
        &self.leads
    }

    /// How many lead keys past the first [`MAX_LEADS_PER_CALL`] were
    /// ignored, as Marketo ignores them.
    pub fn ignored_keys(&self) -> usize {
        self.ignored_keys
    }

    /// The request as the domain validates it ([`CampaignRequest::new`]),
    /// or the fault Marketo answers: 20101 without lead keys, 20103 naming
    /// a key no lead can have (e.g. `IDNUM:abc`), 20113 for campaign id 0
    /// or a blank name, 20110 for a token [`ProgramToken::new`] refuses or
    /// one given twice.
    ///
    /// ```
    /// use marketo_campaign::soap::{read_envelope, Operation};
    /// use marketo_campaign::CampaignTarget;
    /// let envelope = br#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header><ns1:AuthenticationHeader><mktowsUserId>u</mktowsUserId><requestSignature>s</requestSignature><requestTimestamp>t</requestTimestamp></ns1:AuthenticationHeader></SOAP-ENV:Header><SOAP-ENV:Body><ns1:paramsRequestCampaign><source>MKTOWS</source><campaignId>4496</campaignId><leadList><leadKey><keyType>EMAIL</keyType><keyValue>lead@company.com</keyValue></leadKey></leadList></ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    /// let Ok(Operation::RequestCampaign(call)) = read_envelope(envelope)?.into_operation() else {
    ///     panic!("not a valid requestCampaign");
    /// };
    /// let request = call.to_request()?;
    /// assert_eq!(request.target(), &CampaignTarget::id(4496));
    /// assert_eq!(request.leads()[0].to_string(), "EMAIL:lead@company.com");
    /// # Ok::<(), marketo_campaign::soap::Fault>(())
    /// ```
    pub fn to_request(&self) -> Result<CampaignRequest, Fault> {
        let not_found = || Fault::new(SoapCode::CampaignNotFound, "Campaign not found");
        let target = match &self.target {
            Target::Id(id) => {
                if *id == 0 || *id > i32::MAX as u32 {
                    return Err(not_found());
                }
                CampaignTarget::id(*id)
            }
            Target::Named { campaign, program } => {
                if campaign.trim().is_empty() || program.trim().is_empty() {
                    return Err(not_found());
                }
                CampaignTarget::named(
                    campaign.as_ref(),
                    program.as_ref(),
                    program_tokens(&self.tokens)?,
                )
            }
        };
        if self.leads.is_empty() {
            return Err(lead_key_required());
        }
        let leads = self
            .leads
            .iter()
            .map(|key| {
                LeadKey::checked(key.key_type, key.value.as_ref()).map_err(|_| {
                    Fault::new(
                        SoapCode::LeadNotFound,
                        format!("Lead not found: {}:{}", key.key_type, clipped(&key.value)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        CampaignRequest::new(target, leads)
            .map(|request| request.with_source(self.source))
            .map_err(bad_parameter)
    }
}

/// The parameters of `scheduleCampaign`, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleCampaign<'a> {
    program: Cow<'a, str>,
    campaign: Cow<'a, str>,
    run_at: Option<Cow<'a, str>>,
    tokens: Vec<ReceivedToken<'a>>,
}

impl ScheduleCampaign<'_> {
    /// `programName`.
    pub fn program_name(&self) -> &str {
        &self.program
    }

    /// `campaignName`.
    pub fn campaign_name(&self) -> &str {
        &self.campaign
    }

    /// `campaignRunAt`, an `xs:dateTime` (with or without a zone), without
    /// surrounding white space; `None` when absent or empty ("now").
    pub fn run_at(&self) -> Option<&str> {
        self.run_at.as_deref()
    }

    /// `programTokenList`, in order.
    pub fn tokens(&self) -> &[ReceivedToken<'_>] {
        &self.tokens
    }

    /// The tokens as the domain validates them, or fault 20110.
    pub fn program_tokens(&self) -> Result<Vec<ProgramToken>, Fault> {
        program_tokens(&self.tokens)
    }
}

/// The parameters of `getCampaignsForSource`, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetCampaignsForSource<'a> {
    source: Source,
    name: Option<Cow<'a, str>>,
    exact_name: Option<bool>,
}

impl GetCampaignsForSource<'_> {
    /// `source`.
    pub fn source(&self) -> Source {
        self.source
    }

    /// `name`, if sent: campaigns whose name contains it (or equals it,
    /// with [`exact_name`](GetCampaignsForSource::exact_name)).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `exactName`, if sent and not empty.
    pub fn exact_name(&self) -> Option<bool> {
        self.exact_name
    }
}

/// Reads a request envelope with the default [`ReadLimits`].
///
/// Anything wrong with the XML or the envelope's shape is fault 20012; an
/// envelope with more than one `AuthenticationHeader` is fault 20014
/// (authentication failed), whatever the headers hold: a server must not
/// pick one of two credentials.
///
/// ```
/// use marketo_campaign::soap::{read_envelope, Operation};
/// use marketo_campaign::SoapCode;
/// let envelope = br#"<?xml version="1.0" encoding="UTF-8"?>
/// <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">
///   <SOAP-ENV:Header><ns1:AuthenticationHeader>
///     <mktowsUserId>bigcorp1_461839624B16E06BA2D663</mktowsUserId>
///     <requestSignature>ffbff4d4bef354807481e66dc7540f7890523a87</requestSignature>
///     <requestTimestamp>2010-04-09T14:04:54-07:00</requestTimestamp>
///   </ns1:AuthenticationHeader></SOAP-ENV:Header>
///   <SOAP-ENV:Body><ns1:paramsScheduleCampaign>
///     <programName>Newsletters</programName><campaignName>Monthly Newsletter</campaignName>
///     <programTokenList><attrib><name>{{my.Subject}}</name><value>Fall &amp; more&#13;
/// </value></attrib></programTokenList>
///   </ns1:paramsScheduleCampaign></SOAP-ENV:Body>
/// </SOAP-ENV:Envelope>"#;
/// let envelope = read_envelope(envelope)?;
/// assert_eq!(envelope.auth().user_id(), "bigcorp1_461839624B16E06BA2D663");
/// assert_eq!(envelope.operation_name(), "scheduleCampaign");
/// assert!(envelope.check_soap_action(Some("\"http://www.marketo.com/mktows/scheduleCampaign\"")).is_ok());
/// let Ok(Operation::ScheduleCampaign(schedule)) = envelope.operation() else { panic!() };
/// assert_eq!(schedule.campaign_name(), "Monthly Newsletter");
/// assert_eq!(schedule.run_at(), None);
/// assert_eq!(schedule.tokens()[0].value(), "Fall & more\r\n");
///
/// // Not XML at all: fault 20012 at once.
/// let fault = read_envelope(b"<Envelope>").unwrap_err();
/// assert_eq!(fault.code(), SoapCode::RequestNotUnderstood);
///
/// // Two AuthenticationHeaders: fault 20014, whatever they hold.
/// let header = "<ns1:AuthenticationHeader><mktowsUserId>u</mktowsUserId><requestSignature>s</requestSignature><requestTimestamp>t</requestTimestamp></ns1:AuthenticationHeader>";
/// let twice = format!(
///     r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/"><SOAP-ENV:Header>{header}{header}</SOAP-ENV:Header><SOAP-ENV:Body><ns1:paramsRequestCampaign><source>MKTOWS</source><campaignId>4496</campaignId></ns1:paramsRequestCampaign></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
/// );
/// let fault = read_envelope(twice.as_bytes()).unwrap_err();
/// assert_eq!(fault.code(), SoapCode::AuthenticationFailed);
/// # Ok::<(), marketo_campaign::soap::Fault>(())
/// ```
pub fn read_envelope(body: &[u8]) -> Result<Envelope<'_>, Fault> {
    read_envelope_with(body, &ReadLimits::default())
}

/// Reads a request envelope within `limits`.
pub fn read_envelope_with<'a>(body: &'a [u8], limits: &ReadLimits) -> Result<Envelope<'a>, Fault> {
    if body.len() > limits.max_bytes {
        return Err(not_understood(format!(
            "the request is larger than {} bytes",
            limits.max_bytes
        )));
    }
    let doc = std::str::from_utf8(body)
        .map_err(|e| not_understood(format!("malformed XML: not UTF-8 ({e})")))?;
    let mut x = Lexer::new(doc, limits.max_depth, limits.max_elements);
    let shape = || not_understood("the Envelope must hold a Header then a Body");
    let root = x.root()?;
    if !root.is(Ns::Soap, "Envelope") {
        return Err(not_understood(
            "the root element is not a SOAP 1.1 Envelope",
        ));
    }
    if root.empty {
        return Err(shape());
    }
    let header = x
        .next_child("Envelope")?
        .filter(|h| h.is(Ns::Soap, "Header"))
        .ok_or_else(shape)?;
    let auth = read_header(&mut x, &header)?;
    let body = x
        .next_child("Envelope")?
        .filter(|b| b.is(Ns::Soap, "Body"))
        .ok_or_else(shape)?;
    let (operation_name, operation) = read_body(&mut x, &body, doc.len(), limits.max_lead_keys)?;
    if x.next_child("Envelope")?.is_some() {
        return Err(shape());
    }
    x.finish()?;
    let auth = auth.ok_or_else(|| not_understood("no AuthenticationHeader"))?;
    Ok(Envelope {
        auth,
        operation_name,
        operation,
    })
}

fn not_understood(reason: impl Into<String>) -> Fault {
    Fault::new(SoapCode::RequestNotUnderstood, reason)
}

fn lead_key_required() -> Fault {
    Fault::new(SoapCode::LeadKeyRequired, "Lead key required")
}

fn bad_parameter(err: Error) -> Fault {
    let reason = match err {
        Error::InvalidInput { field, reason } => format!("{field}: {reason}"),
        other => other.to_string(),
    };
    Fault::new(SoapCode::BadParameter, format!("Bad parameter: {reason}"))
}

/// At most 64 characters of `value`, for a fault message.
fn clipped(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(64) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}…", &value[..cut])),
    }
}

fn program_tokens(tokens: &[ReceivedToken<'_>]) -> Result<Vec<ProgramToken>, Fault> {
    let tokens = tokens
        .iter()
        .map(|t| ProgramToken::new(t.name.as_ref(), t.value.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad_parameter)?;
    for (i, token) in tokens.iter().enumerate() {
        if tokens[..i].iter().any(|t| t.name() == token.name()) {
            return Err(Fault::new(
                SoapCode::BadParameter,
                format!(
                    "Bad parameter: token {} is given twice",
                    shown(token.name())
                ),
            ));
        }
    }
    Ok(tokens)
}

impl From<Stop> for Fault {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Xml(reason) | Stop::Shape(reason) => not_understood(reason),
        }
    }
}

/// Why the parameters could not be read: the document is broken (the whole
/// envelope is refused), or the parameters are (the fault waits until
/// the caller is authenticated).
enum Failure {
    Xml(String),
    Param(Fault),
}

impl From<Stop> for Failure {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Xml(reason) => Failure::Xml(reason),
            Stop::Shape(reason) => Failure::Param(not_understood(reason)),
        }
    }
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure::Param(fault)
    }
}

/// Places children in schema order: each name at most once, in order,
/// unqualified.
struct Order {
    parent: &'static str,
    names: &'static [&'static str],
    next: usize,
}

impl Order {
    fn new(parent: &'static str, names: &'static [&'static str]) -> Self {
        Order {
            parent,
            names,
            next: 0,
        }
    }

    /// The index of `child` in the schema's order.
    fn place(&mut self, child: &Start<'_>) -> Result<usize, Stop> {
        if child.ns != Ns::None {
            return Err(Stop::Shape(format!(
                "{} must be unqualified in {}",
                child.local, self.parent
            )));
        }
        let index = self.names[self.next..]
            .iter()
            .position(|name| *name == child.local)
            .map(|i| i + self.next)
            .ok_or_else(|| {
                Stop::Shape(format!(
                    "unexpected or out-of-order element {} in {}",
                    child.local, self.parent
                ))
            })?;
        self.next = index + 1;
        Ok(index)
    }
}

fn read_header<'a>(
    x: &mut Lexer<'a>,
    header: &Start<'a>,
) -> Result<Option<AuthenticationHeader<'a>>, Fault> {
    let mut auth = None;
    if header.empty {
        return Ok(None);
    }
    while let Some(entry) = x.next_child("Header")? {
        if entry.is(Ns::Mktows, "AuthenticationHeader") {
            // A server that picked one of two credentials would leave
            // unclear who asked: refused, whatever either holds.
            if auth.is_some() {
                return Err(Fault::new(
                    SoapCode::AuthenticationFailed,
                    "Authentication failed: the envelope holds more than one AuthenticationHeader",
                ));
            }
            auth = Some(read_auth(x, &entry)?);
        } else {
            x.skip(&entry)?;
        }
    }
    Ok(auth)
}

fn read_auth<'a>(
    x: &mut Lexer<'a>,
    element: &Start<'a>,
) -> Result<AuthenticationHeader<'a>, Fault> {
    const FIELDS: &[&str] = &[
        "mktowsUserId",
        "requestSignature",
        "requestTimestamp",
        "audit",
        "mode",
    ];
    let mut order = Order::new("AuthenticationHeader", FIELDS);
    let mut fields: [Option<Cow<'a, str>>; 5] = Default::default();
    if !element.empty {
        while let Some(child) = x.next_child("AuthenticationHeader")? {
            let index = order.place(&child)?;
            fields[index] = Some(x.text(&child)?);
        }
    }
    let [Some(user_id), Some(signature), Some(timestamp), audit, mode] = fields else {
        return Err(not_understood("the AuthenticationHeader is incomplete"));
    };
    Ok(AuthenticationHeader {
        user_id,
        signature,
        timestamp,
        audit,
        mode,
    })
}

/// The operation's name for a `params…` element: `paramsSyncLead` → `syncLead`.
fn operation_name(element: &str) -> Cow<'_, str> {
    match element.strip_prefix("params") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_uppercase()) => {
            let mut name = rest.to_owned();
            name[..1].make_ascii_lowercase();
            Cow::Owned(name)
        }
        _ => Cow::Borrowed(element),
    }
}

type Read<'a> = (Cow<'a, str>, Result<Operation<'a>, Fault>);

fn read_body<'a>(
    x: &mut Lexer<'a>,
    body: &Start<'a>,
    size: usize,
    max_keys: usize,
) -> Result<Read<'a>, Fault> {
    let one = || not_understood("the Body must hold exactly one element");
    if body.empty {
        return Err(one());
    }
    let params = x.next_child("Body")?.ok_or_else(one)?;
    if params.ns != Ns::Mktows {
        return Err(not_understood(
            "the operation element is not in the mktows namespace",
        ));
    }
    let depth = x.depth();
    let read = match params.local {
        "paramsRequestCampaign" => (
            Cow::Borrowed("requestCampaign"),
            read_request_campaign(x, &params, size, max_keys).map(Operation::RequestCampaign),
        ),
        "paramsScheduleCampaign" => (
            Cow::Borrowed("scheduleCampaign"),
            read_schedule_campaign(x, &params).map(Operation::ScheduleCampaign),
        ),
        "paramsGetCampaignsForSource" => (
            Cow::Borrowed("getCampaignsForSource"),
            read_get_campaigns(x, &params).map(Operation::GetCampaignsForSource),
        ),
        "paramsSyncLead" => (
            Cow::Borrowed("syncLead"),
            leads::read_sync_lead(x, &params).map(Operation::SyncLead),
        ),
        "paramsGetLead" => (
            Cow::Borrowed("getLead"),
            leads::read_get_lead(x, &params).map(Operation::GetLead),
        ),
        "paramsSyncMultipleLeads" => (
            Cow::Borrowed("syncMultipleLeads"),
            leads::read_sync_multiple_leads(x, &params).map(Operation::SyncMultipleLeads),
        ),
        "paramsGetMultipleLeads" => (
            Cow::Borrowed("getMultipleLeads"),
            leads::read_get_multiple_leads(x, &params).map(Operation::GetMultipleLeads),
        ),
        "paramsMergeLeads" => (
            Cow::Borrowed("mergeLeads"),
            leads::read_merge_leads(x, &params).map(Operation::MergeLeads),
        ),
        "paramsGetLeadChanges" => (
            Cow::Borrowed("getLeadChanges"),
            leads::read_get_lead_changes(x, &params).map(Operation::GetLeadChanges),
        ),
        "paramsGetLeadActivity" => (
            Cow::Borrowed("getLeadActivity"),
            leads::read_get_lead_activity(x, &params).map(Operation::GetLeadActivity),
        ),
        "paramsListOperation" => (
            Cow::Borrowed("listOperation"),
            leads::read_list_operation(x, &params).map(Operation::ListOperation),
        ),
        "paramsDescribeMObject" => (
            Cow::Borrowed("describeMObject"),
            leads::read_describe(x, &params).map(Operation::DescribeMObject),
        ),
        other => {
            x.skip(&params)?;
            let name = operation_name(other);
            let fault = Fault::unsupported_operation(&name);
            (name, Err(Failure::Param(fault)))
        }
    };
    let read = match read {
        (name, Ok(operation)) => (name, Ok(operation)),
        (_, Err(Failure::Xml(reason))) => return Err(not_understood(reason)),
        (name, Err(Failure::Param(fault))) => {
            // Read (and check) the rest of the parameters, unused.
            if !params.empty {
                x.skip_to(depth)?;
            }
            (name, Err(fault))
        }
    };
    if x.next_child("Body")?.is_some() {
        return Err(one());
    }
    Ok(read)
}

/// `source`: `MKTOWS` or `SALES`, exactly.
fn source(text: Option<&str>) -> Result<Source, Fault> {
    match text {
        Some("MKTOWS") => Ok(Source::Mktows),
        Some("SALES") => Ok(Source::Sales),
        _ => Err(not_understood("source must be MKTOWS or SALES")),
    }
}

/// `text` without XML white space around it.
fn trimmed(text: Cow<'_, str>) -> Cow<'_, str> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_matches(is_space)),
        Cow::Owned(s) if s.trim_matches(is_space).len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim_matches(is_space).to_owned()),
    }
}

fn read_request_campaign<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
    size: usize,
    max_keys: usize,
) -> Result<RequestCampaign<'a>, Failure> {
    const FIELDS: &[&str] = &[
        "source",
        "campaignId",
        "leadList",
        "programName",
        "campaignName",
        "programTokenList",
    ];
    let mut order = Order::new("paramsRequestCampaign", FIELDS);
    let mut text: [Option<Cow<'a, str>>; 5] = Default::default();
    let mut token_list = false;
    let mut leads = Vec::new();
    let mut ignored_keys = 0;
    let mut tokens = Vec::new();
    if !params.empty {
        while let Some(child) = x.next_child("paramsRequestCampaign")? {
            match order.place(&child)? {
                2 => {
                    // A lead key takes at least 60 bytes: reserve once.
                    leads.reserve((size / 60).min(max_keys));
                    read_lead_list(x, &child, &mut leads, &mut ignored_keys, max_keys)?;
                }
                5 => {
                    token_list = true;
                    read_attribs(x, &child, &mut tokens)?;
                }
                index => text[index] = Some(x.text(&child)?),
            }
        }
    }
    let [source_text, campaign_id, _, program, campaign] = text;
    let source = source(source_text.as_deref())?;
    let target = match (campaign_id, program, campaign, token_list) {
        (Some(id), None, None, false) => Target::Id(
            trimmed(id)
                .parse()
                .map_err(|_| not_understood("campaignId must be an integer"))?,
        ),
        (None, Some(program), Some(campaign), true) => Target::Named { campaign, program },
        _ => {
            return Err(Failure::Param(Fault::new(
                SoapCode::BadParameter,
                "Bad parameter: pass campaignId alone, or campaignName, programName and programTokenList",
            )))
        }
    };
    Ok(RequestCampaign {
        source,
        target,
        tokens,
        leads,
        ignored_keys,
    })
}

fn read_lead_list<'a>(
    x: &mut Lexer<'a>,
    list: &Start<'a>,
    leads: &mut Vec<ReceivedLeadKey<'a>>,
    ignored: &mut usize,
    max_keys: usize,
) -> Result<(), Stop> {
    const FIELDS: &[&str] = &["keyType", "keyValue"];
    if list.empty {
        return Ok(());
    }
    loop {
        if leads.len() < max_keys {
            if let Some((key_type, value)) = x.leaf_pair("leadKey", "keyType", "keyValue")? {
                let key_type = key_type
                    .parse::<LeadKeyType>()
                    .map_err(|_| Stop::Shape("unknown keyType".into()))?;
                leads.push(ReceivedLeadKey { key_type, value });
                continue;
            }
        }
        let Some(key) = x.next_child("leadList")? else {
            break;
        };
        if !key.is(Ns::None, "leadKey") {
            return Err(Stop::Shape(format!(
                "unexpected element {} in leadList",
                key.local
            )));
        }
        if leads.len() >= max_keys {
            // Marketo reads the first 100 keys and ignores the rest.
            *ignored += 1;
            x.skip(&key)?;
            continue;
        }
        let mut order = Order::new("leadKey", FIELDS);
        let (mut key_type, mut value) = (None, None);
        if !key.empty {
            while let Some(field) = x.next_child("leadKey")? {
                match order.place(&field)? {
                    0 => key_type = Some(x.text(&field)?),
                    _ => value = Some(x.text(&field)?),
                }
            }
        }
        let (Some(key_type), Some(value)) = (key_type, value) else {
            return Err(Stop::Shape("leadKey needs keyType and keyValue".into()));
        };
        let key_type = key_type
            .parse::<LeadKeyType>()
            .map_err(|_| Stop::Shape("unknown keyType".into()))?;
        leads.push(ReceivedLeadKey { key_type, value });
    }
    Ok(())
}

fn read_attribs<'a>(
    x: &mut Lexer<'a>,
    list: &Start<'a>,
    tokens: &mut Vec<ReceivedToken<'a>>,
) -> Result<(), Stop> {
    const FIELDS: &[&str] = &["name", "value"];
    if list.empty {
        return Ok(());
    }
    loop {
        if let Some((name, value)) = x.leaf_pair("attrib", "name", "value")? {
            tokens.push(ReceivedToken { name, value });
            continue;
        }
        let Some(attrib) = x.next_child("programTokenList")? else {
            break;
        };
        if !attrib.is(Ns::None, "attrib") {
            return Err(Stop::Shape(format!(
                "unexpected element {} in programTokenList",
                attrib.local
            )));
        }
        let mut order = Order::new("attrib", FIELDS);
        let (mut name, mut value) = (None, None);
        if !attrib.empty {
            while let Some(field) = x.next_child("attrib")? {
                match order.place(&field)? {
                    0 => name = Some(x.text(&field)?),
                    _ => value = Some(x.text(&field)?),
                }
            }
        }
        let (Some(name), Some(value)) = (name, value) else {
            return Err(Stop::Shape("attrib needs name and value".into()));
        };
        tokens.push(ReceivedToken { name, value });
    }
    Ok(())
}

/// An `xs:dateTime`: RFC 3339, or without a zone.
pub(crate) fn valid_date_time(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text).is_ok()
        || NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

fn read_schedule_campaign<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<ScheduleCampaign<'a>, Failure> {
    const FIELDS: &[&str] = &[
        "programName",
        "campaignName",
        "campaignRunAt",
        "programTokenList",
    ];
    let mut order = Order::new("paramsScheduleCampaign", FIELDS);
    let mut text: [Option<Cow<'a, str>>; 3] = Default::default();
    let mut tokens = Vec::new();
    if !params.empty {
        while let Some(child) = x.next_child("paramsScheduleCampaign")? {
            match order.place(&child)? {
                3 => read_attribs(x, &child, &mut tokens)?,
                index => text[index] = Some(x.text(&child)?),
            }
        }
    }
    let [program, campaign, run_at] = text;
    let required = |name: &str| {
        Fault::new(
            SoapCode::ParameterRequired,
            format!("Parameter required: {name}"),
        )
    };
    let program = program.ok_or_else(|| required("programName"))?;
    let campaign = campaign.ok_or_else(|| required("campaignName"))?;
    // An empty (or xsi:nil) campaignRunAt means "now", as an absent one.
    let run_at = run_at.map(trimmed).filter(|t| !t.is_empty());
    if let Some(run_at) = &run_at {
        if !valid_date_time(run_at) {
            return Err(Failure::Param(Fault::new(
                SoapCode::BadParameter,
                format!("Bad parameter: campaignRunAt {run_at:?} is not an xs:dateTime"),
            )));
        }
    }
    Ok(ScheduleCampaign {
        program,
        campaign,
        run_at,
        tokens,
    })
}

fn read_get_campaigns<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<GetCampaignsForSource<'a>, Failure> {
    const FIELDS: &[&str] = &["source", "name", "exactName"];
    let mut order = Order::new("paramsGetCampaignsForSource", FIELDS);
    let mut text: [Option<Cow<'a, str>>; 3] = Default::default();
    if !params.empty {
        while let Some(child) = x.next_child("paramsGetCampaignsForSource")? {
            let index = order.place(&child)?;
            text[index] = Some(x.text(&child)?);
        }
    }
    let [source_text, name, exact_name] = text;
    let source = source(source_text.as_deref())?;
    let exact_name = match exact_name.map(trimmed).as_deref() {
        None | Some("") => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => return Err(not_understood("exactName must be true or false").into()),
    };
    Ok(GetCampaignsForSource {
        source,
        name,
        exact_name,
    })
}
