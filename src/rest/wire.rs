//! REST wire formats: the request bodies and the response envelope.

use serde::{Deserialize, Serialize};

use crate::error::{Error, RestCode};
use crate::redact::{quote, redact};
use crate::request::ProgramToken;

/// `{"input":{"leads":[{"id":N}],"tokens":[{"name":..,"value":..}]}}`
/// (triggerCampaignUsingPOST's `TriggerCampaignRequest`).
#[derive(Serialize)]
pub(crate) struct TriggerBody<'a> {
    pub(crate) input: TriggerInput<'a>,
}

#[derive(Serialize)]
pub(crate) struct TriggerInput<'a> {
    pub(crate) leads: Vec<LeadId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tokens: Vec<TokenRef<'a>>,
}

impl TriggerBody<'_> {
    /// The body's JSON: what `serde_json::to_string` writes, with the lead
    /// ids written directly (a hundred `{"id":N}` objects through serde's
    /// serializer took ~2 µs).
    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        const START: &[u8] = br#"{"input":{"leads":["#;
        // `{"id":4294967295},` is 18 bytes.
        let mut json = Vec::with_capacity(START.len() + 18 * self.input.leads.len() + 3);
        json.extend_from_slice(START);
        for (i, lead) in self.input.leads.iter().enumerate() {
            // `,{"id":` then the digits and `}`, at the end of `item`.
            let mut item = *b",{\"id\":0000000000}";
            let digits = write_decimal(&mut item[..17], lead.id);
            let start = 17 - digits - 6;
            item[start..start + 6].copy_from_slice(br#"{"id":"#);
            let from = if i == 0 { start } else { start - 1 };
            if i > 0 {
                item[from] = b',';
            }
            json.extend_from_slice(&item[from..]);
        }
        json.push(b']');
        if !self.input.tokens.is_empty() {
            json.extend_from_slice(br#","tokens":"#);
            serde_json::to_writer(&mut json, &self.input.tokens)?;
        }
        json.extend_from_slice(b"}}");
        String::from_utf8(json).map_err(serde::ser::Error::custom)
    }
}

/// Writes `n` in decimal at the end of `out` (which holds at least 10
/// bytes); returns the number of digits.
fn write_decimal(out: &mut [u8], mut n: u32) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut at = out.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        out[at] = b'0' + n as u8;
    }
    out.len() - at
}

/// `{"id":N}` (`InputLead`).
#[derive(Serialize)]
pub(crate) struct LeadId {
    pub(crate) id: u32,
}

/// `{"name":"{{my.X}}","value":".."}` (`Token`).
#[derive(Serialize)]
pub(crate) struct TokenRef<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
}

impl<'a> TokenRef<'a> {
    pub(crate) fn all(tokens: &'a [ProgramToken]) -> Vec<TokenRef<'a>> {
        tokens
            .iter()
            .map(|t| TokenRef {
                name: t.name(),
                value: t.value(),
            })
            .collect()
    }
}

/// `{"input":{"runAt":..,"tokens":[..]}}` (`ScheduleCampaignRequest`).
#[derive(Serialize)]
pub(crate) struct ScheduleBody<'a> {
    pub(crate) input: ScheduleInput<'a>,
}

#[derive(Serialize)]
pub(crate) struct ScheduleInput<'a> {
    #[serde(rename = "runAt", skip_serializing_if = "Option::is_none")]
    pub(crate) run_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tokens: Vec<TokenRef<'a>>,
}

#[derive(Deserialize)]
struct ErrorItem {
    code: serde_json::Value,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default = "Vec::new")]
    result: Vec<T>,
    #[serde(default)]
    more_result: bool,
    next_page_token: Option<String>,
}

/// One record of a `leads.json` answer, as the look-ups read it: the
/// lead's `id` and the string values of the fields a look-up can filter
/// on, nothing else (no tree, one allocation per filter field present).
///
/// It reads exactly what `serde_json::Value` reads (the look-ups read
/// records that way before): any JSON value is a record, the same bytes
/// fail at the same place (every value goes through `deserialize_any`,
/// under serde_json's nesting limit), a repeated field keeps its last
/// value, `id` counts only as an integer that fits a `u32`
/// (`Value::as_u64`), and a filter field only as a string
/// (`Value::as_str`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeadRecord {
    /// `id`, when its (last) value is an integer that fits a `u32`.
    pub(crate) id: Option<u32>,
    /// Each filter field present, with its last value when a string.
    fields: Vec<(&'static str, Option<String>)>,
}

impl LeadRecord {
    /// The string value of field `name`, as `record.get(name)?.as_str()`
    /// on a `serde_json::Value`.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .and_then(|(_, value)| value.as_deref())
    }
}

/// The names of the fields a `leads.json` look-up filters on (the
/// [`LeadKeyType::rest_filter_type`](crate::LeadKeyType::rest_filter_type)
/// table), spelled as in the answer; `id` is read apart.
fn filter_field(name: &str) -> Option<&'static str> {
    crate::LeadKeyType::ALL
        .iter()
        .filter_map(|t| t.rest_filter_type())
        .find(|field| *field == name && *field != "id")
}

impl<'de> Deserialize<'de> for LeadRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RecordVisitor(std::marker::PhantomData))
    }
}

/// What a record's key is to the look-up.
enum RecordKey {
    Id,
    Filter(&'static str),
    Other,
}

impl<'de> Deserialize<'de> for RecordKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde_json reads a map key as a string whatever is asked.
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl serde::de::Visitor<'_> for KeyVisitor {
    type Value = RecordKey;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<RecordKey, E> {
        Ok(match key {
            "id" => RecordKey::Id,
            other => filter_field(other).map_or(RecordKey::Other, RecordKey::Filter),
        })
    }
}

/// What a value of a record keeps of the JSON value it reads: a scalar's
/// value, or nothing (the default). Read through [`AnyValue`].
trait Keep: Default {
    fn unsigned(_: u64) -> Self {
        Self::default()
    }

    fn negative(_: i64) -> Self {
        Self::default()
    }

    fn text(_: &str) -> Self {
        Self::default()
    }
}

/// Reads any JSON value into a [`Keep`]. Maps and arrays are walked
/// element by element through `deserialize_any` (never
/// `deserialize_ignored_any`, which serde_json reads without its nesting
/// limit), so every input fails exactly where a `serde_json::Value` would.
struct AnyValue<T>(std::marker::PhantomData<T>);

impl<T> AnyValue<T> {
    fn read<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<T, D::Error>
    where
        T: Keep,
    {
        deserializer.deserialize_any(AnyValue(std::marker::PhantomData))
    }
}

impl<'de, T: Keep> serde::de::Visitor<'de> for AnyValue<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::unsigned(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::negative(v))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::text(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(T::default())
    }
}

/// Any JSON value, read and dropped.
#[derive(Default)]
struct Skip;

impl Keep for Skip {}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AnyValue::read(deserializer)
    }
}

/// An `id` value: `Some` for an integer that fits a `u32`.
#[derive(Default)]
struct IdValue(Option<u32>);

// `Value::as_u64` of what serde_json made of the number: only a
// non-negative integer (not a float, `-0` included).
impl Keep for IdValue {
    fn unsigned(v: u64) -> Self {
        IdValue(u32::try_from(v).ok())
    }

    fn negative(v: i64) -> Self {
        IdValue(u64::try_from(v).ok().and_then(|v| u32::try_from(v).ok()))
    }
}

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AnyValue::read(deserializer)
    }
}

/// A filter field's value: `Some` for a string.
#[derive(Default)]
struct TextValue(Option<String>);

impl Keep for TextValue {
    fn text(v: &str) -> Self {
        TextValue(Some(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for TextValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AnyValue::read(deserializer)
    }
}

/// A record read from a JSON object's fields; any other JSON value is a
/// record without fields (the default), read through and dropped.
trait FromMap: Default {
    fn from_map<'de, A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Reads a [`FromMap`] record from any JSON value.
struct RecordVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: FromMap> serde::de::Visitor<'de> for RecordVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    // Anything but an object is a record without fields.
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

impl FromMap for LeadRecord {
    fn from_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut record = LeadRecord::default();
        while let Some(key) = map.next_key::<RecordKey>()? {
            match key {
                // The last value of a repeated field counts.
                RecordKey::Id => record.id = map.next_value::<IdValue>()?.0,
                RecordKey::Filter(name) => {
                    let value = map.next_value::<TextValue>()?.0;
                    match record.fields.iter_mut().find(|(field, _)| *field == name) {
                        Some(slot) => slot.1 = value,
                        None => record.fields.push((name, value)),
                    }
                }
                RecordKey::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(record)
    }
}

/// A record type of REST answers, and how a whole answer of such records
/// is read: [`read`] unless the type knows a faster way to the same result.
pub(crate) trait Record: serde::de::DeserializeOwned {
    /// The answer's records and paging, or its error: always what [`read`]
    /// gives for the same status and body.
    fn read_page(status: u16, body: &[u8]) -> Result<Page<Self>, Error> {
        read(status, body)
    }
}

impl Record for serde_json::Value {}

impl Record for LeadRecord {
    /// The answers Marketo writes to a look-up (`{"requestId":"…",
    /// "result":[{"id":N},…],"success":true}`, no spaces, plain text) are
    /// read by [`read_plain_leads`]; anything else by [`read`].
    fn read_page(status: u16, body: &[u8]) -> Result<Page<Self>, Error> {
        match read_plain_leads(status, body) {
            Some(result) => Ok(Page {
                result,
                next_page_token: None,
                token: None,
            }),
            None => read(status, body),
        }
    }
}

/// A record of a trigger or schedule answer, as [`check_skipped`] reads
/// it: the record, or `None` for a record that is only `{"id":N}` (read
/// without serde: such a record was not skipped).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ActionRecord(pub(crate) Option<serde_json::Value>);

/// Keeps of a record only what [`check_skipped`] reads, `status` and
/// `reasons` (the last of each, as `serde_json::Value` keeps them), and
/// reads the rest as [`Skip`], without building it: a trigger answered
/// with whole `Campaign` records (the Swagger's shape) reads as fast as
/// with ids. Any JSON value is a record, as with `serde_json::Value`.
impl FromMap for ActionRecord {
    fn from_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(key) = map.next_key::<ActionKey>()? {
            match key {
                ActionKey::Status => {
                    kept.insert("status".into(), map.next_value()?);
                }
                ActionKey::Reasons => {
                    kept.insert("reasons".into(), map.next_value()?);
                }
                ActionKey::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(ActionRecord(
            (!kept.is_empty()).then_some(serde_json::Value::Object(kept)),
        ))
    }
}

impl<'de> Deserialize<'de> for ActionRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RecordVisitor(std::marker::PhantomData))
    }
}

/// What a trigger record's key is to [`check_skipped`].
enum ActionKey {
    Status,
    Reasons,
    Other,
}

impl<'de> Deserialize<'de> for ActionKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionKeyVisitor;
        impl serde::de::Visitor<'_> for ActionKeyVisitor {
            type Value = ActionKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<ActionKey, E> {
                Ok(match key {
                    "status" => ActionKey::Status,
                    "reasons" => ActionKey::Reasons,
                    _ => ActionKey::Other,
                })
            }
        }
        // serde_json reads a map key as a string whatever is asked.
        deserializer.deserialize_str(ActionKeyVisitor)
    }
}

impl Record for ActionRecord {
    /// Marketo's usual answer (`{"requestId":"…","result":[{"id":N}],
    /// "success":true}`) is read by [`read_plain_leads`]; anything else,
    /// or a record with more than its id, by [`read`].
    fn read_page(status: u16, body: &[u8]) -> Result<Page<Self>, Error> {
        match read_plain_leads(status, body) {
            Some(records) if records.iter().all(|r| r.fields.is_empty()) => Ok(Page {
                result: records.iter().map(|_| ActionRecord(None)).collect(),
                next_page_token: None,
                token: None,
            }),
            _ => read(status, body),
        }
    }
}

/// A `success:true` answer may still carry records with `status:"skipped"`
/// and `reasons`: for a trigger, the campaign did not run for the chunk.
pub(crate) fn check_skipped(records: &[ActionRecord]) -> Result<(), Error> {
    let Some(skipped) = records
        .iter()
        .filter_map(|r| r.0.as_ref())
        .find(|r| r.get("status").and_then(|s| s.as_str()) == Some("skipped"))
    else {
        return Ok(());
    };
    let reasons = skipped
        .get("reasons")
        .and_then(|r| r.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let code = reasons
        .first()
        .and_then(|r| r.get("code"))
        .and_then(|c| match c {
            serde_json::Value::String(s) => s.parse().ok(),
            other => other.as_u64().and_then(|n| u32::try_from(n).ok()),
        })
        .unwrap_or(0);
    let message = reasons
        .iter()
        .filter_map(|r| r.get("message").and_then(|m| m.as_str()))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::Rest {
        code: RestCode::from_code(code),
        message: format!("skipped: {message}"),
    })
}

/// The records of a `leads.json` answer written exactly as Marketo writes
/// one page of it, or `None` for any other status or body:
///
/// ```text
/// {"requestId":"TEXT","result":[RECORD,…],"success":true}
/// {"errors":[],"requestId":"TEXT","result":[RECORD,…],"success":true,"warnings":[]}
/// RECORD: {"id":DIGITS} or {"id":DIGITS,"FILTER":"TEXT"}
/// ```
///
/// (the first as Marketo documents its answers, the second as its Swagger
/// requires them and the sandbox writes them)
///
/// with no whitespace, `TEXT` printable ASCII without `"` or `\`,
/// `DIGITS` a JSON integer of at most 10 digits, `FILTER` a filter field
/// other than `id`, and nothing after. Such a body is valid JSON that
/// [`read`] takes as a success without a next page, whose records are
/// these: the same result without a tree walk (10x faster). Anything else
/// (an error answer, paging, escapes, unknown fields, a space) is left to
/// [`read`].
fn read_plain_leads(status: u16, body: &[u8]) -> Option<Vec<LeadRecord>> {
    if status != 200 {
        return None;
    }
    let mut at = Cursor(body);
    at.eat(b"{")?;
    // The Swagger-complete envelope (the sandbox's) leads with the empty
    // `errors` and ends with the empty `warnings`; Marketo's documented
    // one has neither.
    let complete = at.eat(br#""errors":[],"#).is_some();
    at.eat(br#""requestId":""#)?;
    at.text()?;
    at.eat(br#"","result":["#)?;
    // A record takes 9 bytes or more (`{"id":N},`).
    let mut records = Vec::with_capacity(at.0.len() / 9);
    if at.eat(b"]").is_none() {
        loop {
            at.eat(br#"{"id":"#)?;
            let id = u32::try_from(at.integer()?).ok();
            let mut record = LeadRecord {
                id,
                fields: Vec::new(),
            };
            if at.eat(br#",""#).is_some() {
                let name = filter_field(at.text()?)?;
                at.eat(br#"":""#)?;
                let value = at.text()?;
                at.eat(b"\"")?;
                record.fields.push((name, Some(value.to_owned())));
            }
            at.eat(b"}")?;
            records.push(record);
            if at.eat(b"]").is_some() {
                break;
            }
            at.eat(b",")?;
        }
    }
    at.eat(br#","success":true"#)?;
    if complete {
        at.eat(br#","warnings":[]"#)?;
    }
    at.eat(b"}")?;
    at.0.is_empty().then_some(records)
}

/// A position in a body, for [`read_plain_leads`].
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// Steps over `literal`, if the body goes on with it.
    fn eat(&mut self, literal: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(literal)?;
        Some(())
    }

    /// Plain text up to (not over) the next `"`: printable ASCII, no `\`.
    fn text(&mut self) -> Option<&'a str> {
        let end = self.0.iter().position(|&b| b == b'"')?;
        let (text, rest) = self.0.split_at(end);
        if !text
            .iter()
            .all(|&b| (0x20..0x7F).contains(&b) && b != b'\\')
        {
            return None;
        }
        self.0 = rest;
        std::str::from_utf8(text).ok()
    }

    /// A JSON integer of 1 to 10 digits (`0`, or no leading zero).
    fn integer(&mut self) -> Option<u64> {
        let digits = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 10 || (digits > 1 && self.0[0] == b'0') {
            return None;
        }
        let (number, rest) = self.0.split_at(digits);
        self.0 = rest;
        Some(
            number
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
        )
    }
}

/// A successful answer's records and paging.
pub(crate) struct Page<T> {
    pub(crate) result: Vec<T>,
    pub(crate) next_page_token: Option<String>,
    /// `nextPageToken` as sent, with `moreResult` false or absent too (the
    /// activity paging token, `pagingtoken.json`'s answer).
    pub(crate) token: Option<String>,
}

/// Reads a REST answer: `success:true` gives the records; `success:false`
/// gives [`Error::Rest`] with the first error's code; a 4xx or 501 is
/// [`Error::HttpStatus`]; anything else is [`Error::Protocol`]. Quoted text
/// is redacted first.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &[u8],
) -> Result<Page<T>, Error> {
    let protocol = |reason: String| Error::Protocol {
        status,
        reason,
        body: quote(body, 512),
    };
    // Marketo answers its errors with HTTP 200; a 4xx (or 501) comes from a
    // layer in front of the API, which refused the call whatever its body
    // says. A 5xx proves nothing, whatever its body says: see
    // `Error::classify`.
    if (400..500).contains(&status) || status == 501 {
        return Err(Error::HttpStatus {
            status,
            body: quote(body, 512),
        });
    }
    let parsed: Envelope<T> = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) => return Err(protocol(format!("not a Marketo REST answer: {e}"))),
    };
    if status != 200 {
        return Err(protocol(format!("HTTP {status}")));
    }
    if !parsed.success {
        let first = parsed
            .errors
            .into_iter()
            .next()
            .ok_or_else(|| protocol("success:false without errors".into()))?;
        let code = match &first.code {
            serde_json::Value::String(s) => s.trim().parse().unwrap_or(0),
            serde_json::Value::Number(n) => {
                n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
            }
            _ => 0,
        };
        return Err(Error::Rest {
            code: RestCode::from_code(code),
            message: redact(&first.message).into_owned(),
        });
    }
    let more = parsed.more_result;
    Ok(Page {
        result: parsed.result,
        token: parsed.next_page_token.clone(),
        next_page_token: parsed.next_page_token.filter(|_| more),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Delivery;

    #[test]
    fn trigger_body_matches_the_swagger_shape() {
        let tokens = [ProgramToken::new("{{my.A}}", "x \"y\"").unwrap()];
        let body = TriggerBody {
            input: TriggerInput {
                leads: vec![LeadId { id: 1 }, LeadId { id: 2 }],
                tokens: TokenRef::all(&tokens),
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"input":{"leads":[{"id":1},{"id":2}],"tokens":[{"name":"{{my.A}}","value":"x \"y\""}]}}"#
        );
        assert_eq!(
            body.to_json().unwrap(),
            serde_json::to_string(&body).unwrap()
        );
        let body = TriggerBody {
            input: TriggerInput {
                leads: vec![LeadId { id: 1 }],
                tokens: Vec::new(),
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"input":{"leads":[{"id":1}]}}"#
        );
        assert_eq!(body.to_json().unwrap(), r#"{"input":{"leads":[{"id":1}]}}"#);
        let body = TriggerBody {
            input: TriggerInput {
                leads: vec![LeadId { id: 0 }, LeadId { id: 10 }, LeadId { id: u32::MAX }],
                tokens: Vec::new(),
            },
        };
        assert_eq!(
            body.to_json().unwrap(),
            r#"{"input":{"leads":[{"id":0},{"id":10},{"id":4294967295}]}}"#
        );
    }

    #[test]
    fn skipped_records_are_refusals_with_their_reasons() {
        let ok = [
            ActionRecord(None),
            ActionRecord(Some(serde_json::json!({"id": 4496}))),
        ];
        assert!(check_skipped(&ok).is_ok());
        let skipped = [
            ActionRecord(None),
            ActionRecord(Some(serde_json::json!({"id": 4496, "status": "skipped",
            "reasons": [{"code": "1004", "message": "Lead not found"}]}))),
        ];
        let err = check_skipped(&skipped).unwrap_err();
        assert_eq!(err.rest_code(), Some(RestCode::LeadNotFound));
        assert_eq!(err.delivery(), Delivery::Refused);
        assert!(err.to_string().contains("Lead not found"));
    }

    #[test]
    fn answers() {
        let ok = br#"{"requestId":"1#2","success":true,"result":[{"id":4496}]}"#;
        let page: Page<serde_json::Value> = read(200, ok).unwrap();
        assert_eq!(page.result[0]["id"], 4496);
        let err = read::<serde_json::Value>(
            200,
            br#"{"requestId":"1","success":false,"errors":[{"code":"606","message":"Max rate limit"}]}"#,
        )
        .err()
        .unwrap();
        assert_eq!(err.rest_code(), Some(RestCode::RateLimited));
        assert_eq!(err.delivery(), Delivery::Refused);
        let err = read::<serde_json::Value>(200, b"").err().unwrap();
        assert_eq!(err.delivery(), Delivery::Unknown);
        let err = read::<serde_json::Value>(410, b"Gone").err().unwrap();
        assert!(matches!(err, Error::HttpStatus { status: 410, .. }));
        let err = read::<serde_json::Value>(502, b"Bad gateway")
            .err()
            .unwrap();
        assert_eq!(err.delivery(), Delivery::Unknown);
    }
}

/// Property tests: bodies carry any string exactly, and no answer, however
/// hostile, panics or succeeds by accident.
#[cfg(test)]
mod proptests {
    use std::time::{Duration, Instant};

    use proptest::collection::vec;
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::error::Delivery;
    use test_support::{edits, hostile, mutate};

    fn strings(value: &Value) -> Vec<(String, String)> {
        value
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|t| {
                        (
                            t["name"].as_str().unwrap().to_owned(),
                            t["value"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Any token text and lead id crosses the JSON body unchanged.
        #[test]
        fn bodies_round_trip(
            ids in vec(any::<u32>(), 1..5),
            tokens in vec((hostile(), hostile()), 0..4),
            run_at in proptest::option::of(hostile()),
        ) {
            let refs: Vec<TokenRef<'_>> = tokens
                .iter()
                .map(|(name, value)| TokenRef { name, value })
                .collect();
            let body = TriggerBody {
                input: TriggerInput {
                    leads: ids.iter().map(|&id| LeadId { id }).collect(),
                    tokens: refs,
                },
            };
            let json = serde_json::to_string(&body).unwrap();
            prop_assert_eq!(&body.to_json().unwrap(), &json);
            // Control characters are escaped, never raw.
            prop_assert!(!json.chars().any(|c| c < ' '));
            let back: Value = serde_json::from_str(&json).unwrap();
            let got_ids: Vec<u64> = back["input"]["leads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_u64().unwrap())
                .collect();
            prop_assert_eq!(got_ids, ids.iter().map(|&i| u64::from(i)).collect::<Vec<_>>());
            prop_assert_eq!(strings(&back["input"]["tokens"]), tokens.clone());

            let body = ScheduleBody {
                input: ScheduleInput {
                    run_at: run_at.clone(),
                    tokens: tokens.iter().map(|(name, value)| TokenRef { name, value }).collect(),
                },
            };
            let back: Value = serde_json::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap();
            prop_assert_eq!(back["input"]["runAt"].as_str(), run_at.as_deref());
            prop_assert_eq!(strings(&back["input"]["tokens"]), tokens);
        }

        /// An error's code and message come back as sent.
        #[test]
        fn errors_are_read_back_exactly(code in any::<u32>(), as_number in any::<bool>(), message in hostile()) {
            let code_json = if as_number { Value::from(code) } else { Value::from(code.to_string()) };
            let body = serde_json::json!({
                "requestId": "1#1",
                "success": false,
                "errors": [{"code": code_json, "message": message}],
            });
            match read::<Value>(200, body.to_string().as_bytes()) {
                Err(Error::Rest { code: got, message: got_message }) => {
                    prop_assert_eq!(got.code(), code);
                    prop_assert_eq!(got_message, message);
                }
                Err(other) => prop_assert!(false, "{:?}", other),
                Ok(_) => prop_assert!(false, "success"),
            }
        }
    }

    // --- At scale: arbitrary and mutated answers.

    fn status() -> impl Strategy<Value = u16> {
        prop_oneof![
            4 => Just(200u16),
            1 => prop::sample::select(vec![201u16, 204, 301, 400, 401, 403, 404, 410, 414, 429, 500, 502, 503]),
            1 => any::<u16>(),
        ]
    }

    fn check(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
        match read::<Value>(status, body) {
            Ok(_) => prop_assert_eq!(status, 200),
            Err(err) => {
                prop_assert!(
                    err.to_string().len() < 4096,
                    "error of {} bytes",
                    err.to_string().len()
                );
                match &err {
                    Error::HttpStatus { .. } => {
                        prop_assert_eq!(err.delivery(), Delivery::Refused);
                        prop_assert!((400..500).contains(&status) || status == 501);
                    }
                    // Refused or unknown by its code; never "not sent".
                    Error::Rest { .. } => prop_assert_ne!(err.delivery(), Delivery::NotSent),
                    Error::Protocol { .. } => prop_assert_eq!(err.delivery(), Delivery::Unknown),
                    other => prop_assert!(false, "unexpected error {:?}", other),
                }
                if let Error::Rest { .. } = err {
                    prop_assert_eq!(status, 200);
                }
            }
        }
        Ok(())
    }

    const VALID: &[&str] = &[
        r#"{"requestId":"1#2","success":true,"result":[{"id":4496,"name":"C","programName":"P"}],"moreResult":true,"nextPageToken":"abc"}"#,
        r#"{"requestId":"1","success":false,"errors":[{"code":"606","message":"Max rate limit"}]}"#,
        r#"{"requestId":"1","success":true,"result":[{"id":1,"status":"skipped","reasons":[{"code":1004,"message":"Lead not found"}]}]}"#,
    ];

    const SPLICES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b"null",
        b"true",
        b"false",
        b"1e999",
        b"-0",
        b"\\u0000",
        b"\\ud800",
        b"\xff",
        b"\"success\":true,",
        b"\"errors\":[],",
        b"[[[[[[[[",
    ];

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
            let mut doc = VALID[which].as_bytes().to_vec();
            mutate(&mut doc, &edits, SPLICES, 32);
            check(status, &doc)?;
        }
    }

    /// A look-up answer as Marketo writes it (the fast reader's shape),
    /// with ids of any size and plain or not-so-plain text.
    fn plain_leads_answer() -> impl Strategy<Value = String> {
        let text = prop_oneof![
            4 => "[ -~]{0,12}",
            1 => hostile(),
        ];
        let id = prop_oneof![
            4 => (0u64..100_000).prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "4294967295", "4294967296", "9999999999", "10000000000", "007", "-1", "1.5", "1e3",
            ])
            .prop_map(str::to_owned),
        ];
        let field = prop::sample::select(vec![
            "email",
            "cookies",
            "sfdcLeadId",
            "id",
            "name",
            "status",
        ]);
        let value = prop_oneof![4 => text.clone(), 1 => Just("skipped".to_owned())];
        let record =
            (id, proptest::option::of((field, value))).prop_map(|(id, field)| match field {
                None => format!(r#"{{"id":{id}}}"#),
                Some((name, value)) => format!(r#"{{"id":{id},"{name}":"{value}"}}"#),
            });
        (text, vec(record, 0..6), 0..4u8).prop_map(|(request_id, records, shape)| {
            let records = records.join(",");
            match shape {
                // Marketo's documented answer.
                0 | 1 => format!(
                    r#"{{"requestId":"{request_id}","result":[{records}],"success":true}}"#
                ),
                // The Swagger-complete one (the sandbox's).
                2 => format!(
                    r#"{{"errors":[],"requestId":"{request_id}","result":[{records}],"success":true,"warnings":[]}}"#
                ),
                // Half of it: valid JSON, not the fast reader's shape.
                _ => format!(
                    r#"{{"errors":[],"requestId":"{request_id}","result":[{records}],"success":true}}"#
                ),
            }
        })
    }

    fn same_as_read(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
        let fast = LeadRecord::read_page(status, body)
            .map(|page| (page.result, page.next_page_token))
            .map_err(|e| e.to_string());
        let slow = read::<LeadRecord>(status, body)
            .map(|page| (page.result, page.next_page_token))
            .map_err(|e| e.to_string());
        prop_assert_eq!(fast, slow);
        // A trigger's answer: the same number of records, the same paging
        // and the same verdict as from `serde_json::Value` records.
        let verdict = |page: Page<ActionRecord>| {
            let skipped = check_skipped(&page.result).map_err(|e| e.to_string());
            (page.result.len(), page.next_page_token, skipped)
        };
        // The same error, but serde may place it a column apart when it
        // skips a value instead of building it.
        let unplaced = |e: Error| {
            let text = e.to_string();
            match (text.find(" at line "), text.find("; body:")) {
                (Some(at), Some(body)) if at < body => format!("{}{}", &text[..at], &text[body..]),
                _ => text,
            }
        };
        let fast = ActionRecord::read_page(status, body)
            .map(verdict)
            .map_err(unplaced);
        let slow = read::<serde_json::Value>(status, body)
            .map(|page| {
                verdict(Page {
                    result: page
                        .result
                        .into_iter()
                        .map(|r| ActionRecord(Some(r)))
                        .collect(),
                    next_page_token: page.next_page_token,
                    token: page.token,
                })
            })
            .map_err(unplaced);
        prop_assert_eq!(fast, slow);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// The fast look-up reader gives what `read` gives, for Marketo's
        /// answers and for anything near them.
        #[test]
        fn plain_lead_answers_read_as_with_serde(
            status in status(),
            body in plain_leads_answer(),
            edits in proptest::option::of(edits()),
        ) {
            let mut doc = body.into_bytes();
            if let Some(edits) = edits {
                mutate(&mut doc, &edits, SPLICES, 16);
            }
            same_as_read(status, &doc)?;
        }
    }

    #[test]
    fn marketo_look_up_answers_take_the_fast_path() {
        let body = br#"{"requestId":"e42b#1","result":[{"id":1},{"id":4294967296},{"id":7,"email":"a@b.c"}],"success":true}"#;
        let records = read_plain_leads(200, body).unwrap();
        assert_eq!(
            records.iter().map(|r| r.id).collect::<Vec<_>>(),
            [Some(1), None, Some(7)]
        );
        assert_eq!(records[2].field("email"), Some("a@b.c"));
        assert_eq!(
            read_plain_leads(200, br#"{"requestId":"","result":[],"success":true}"#),
            Some(Vec::new())
        );
        // The Swagger-complete shape, as the sandbox writes it.
        let complete = br#"{"errors":[],"requestId":"e42b#1","result":[{"id":1},{"id":7,"email":"a@b.c"}],"success":true,"warnings":[]}"#;
        let records = read_plain_leads(200, complete).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].field("email"), Some("a@b.c"));
        for other in [
            &br#"{"errors":[],"requestId":"e","result":[],"success":true}"#[..],
            br#"{"requestId":"e","result":[],"success":true,"warnings":[]}"#,
            br#"{"errors":[],"requestId":"e","result":[],"success":true,"warnings":[{"code":1,"message":"m"}]}"#,
            &br#"{"requestId":"e","result":[{"id":1}],"success":true} "#[..],
            br#"{"requestId":"e","result":[{"id":1}],"success":true,"moreResult":true,"nextPageToken":"x"}"#,
            br#"{"requestId":"e","result":[{"id":01}],"success":true}"#,
            br#"{"requestId":"e\u0041","result":[],"success":true}"#,
            br#"{"requestId":"e","result":[{"id":1,"firstName":"x"}],"success":true}"#,
            br#"{"requestId":"e","success":false,"errors":[{"code":"606"}]}"#,
        ] {
            assert_eq!(read_plain_leads(200, other), None, "{}", String::from_utf8_lossy(other));
        }
        assert_eq!(read_plain_leads(500, body), None);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let depth = 100_000;
        let started = Instant::now();
        for body in [
            format!(
                r#"{{"success":true,"result":[{}{}]}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            ),
            format!(r#"{{"success":true,"result":[{}"#, r#"{"a":"#.repeat(depth)),
            "[".repeat(depth),
        ] {
            let err = read::<Value>(200, body.as_bytes()).err().unwrap();
            assert_eq!(err.delivery(), Delivery::Unknown);
            assert!(err.to_string().len() < 2048);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn success_needs_a_200_and_success_true() {
        let ok = VALID[0].as_bytes();
        assert_eq!(
            read::<Value>(200, ok)
                .ok()
                .unwrap()
                .next_page_token
                .as_deref(),
            Some("abc")
        );
        for status in [201, 204, 302, 404, 500] {
            assert!(read::<Value>(status, ok).is_err(), "{status}");
        }
        assert!(read::<Value>(200, br#"{"success":"true","result":[]}"#).is_err());
        assert!(read::<Value>(200, br#"{"result":[]}"#).is_err());
    }
}
