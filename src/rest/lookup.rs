//! Look-ups that let SOAP-shaped requests run over REST: campaign name +
//! program name → campaign id, lead keys → lead ids.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;

use crate::error::Error;
use crate::request::{LeadKey, LeadKeyType};
use crate::rest::client::RestClient;
use crate::rest::wire::LeadRecord;

/// At most this many `filterValues` per `leads.json` call.
pub(crate) const MAX_FILTER_VALUES: usize = 300;
/// Keep look-up URLs under this many bytes (servers refuse 8 KB and more).
pub(crate) const MAX_URL_BYTES: usize = 8_000;
/// Stop following `nextPageToken` after this many pages.
const MAX_PAGES: usize = 1_000;

/// Whether `byte` passes [`encode`] as it is (RFC 3986 unreserved).
fn is_unreserved(byte: u8) -> bool {
    matches!(byte, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(encoded_len(s));
    encode_into(&mut out, s);
    out
}

/// [`encode`], appended to `out`.
fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if s.bytes().all(is_unreserved) {
        out.push_str(s);
        return;
    }
    for byte in s.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

/// The length of [`encode`]`(s)`, without writing it.
fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|byte| if is_unreserved(byte) { 1 } else { 3 })
        .sum()
}

/// A hasher for sets of lead ids (`u32`): one multiply per id, where
/// SipHash takes ~20 ns. The ids come from the caller's own request, and a
/// set holds the ids of one request; the rotation in `finish` puts the
/// well-mixed middle bits of the product where the table looks (its low
/// bits), so ids that share their low bits (multiples of 1024) still spread.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // rustc-hash's multiplier (an odd constant with mixed bits).
        self.0 = (self.0 ^ n).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

/// A set of lead ids, hashed with [`IdHasher`].
pub(crate) type IdSet = HashSet<u32, BuildHasherDefault<IdHasher>>;

/// The lead ids met so far, to do something once per id. While ids come
/// in increasing order (as they mostly do) none can repeat an earlier one,
/// and none is hashed; from the first that does not, an [`IdSet`] holds them.
#[derive(Debug, Default)]
pub(crate) struct IdsOnce {
    /// The ids met, while in increasing order.
    increasing: Vec<u32>,
    set: Option<IdSet>,
}

impl IdsOnce {
    /// Room for `count` ids met in increasing order.
    pub(crate) fn with_capacity(count: usize) -> Self {
        IdsOnce {
            increasing: Vec::with_capacity(count),
            set: None,
        }
    }

    /// `true` the first time `id` is met.
    pub(crate) fn first(&mut self, id: u32) -> bool {
        if let Some(set) = self.set.as_mut() {
            return set.insert(id);
        }
        if self.increasing.last().is_none_or(|&last| id > last) {
            self.increasing.push(id);
            return true;
        }
        let mut set =
            IdSet::with_capacity_and_hasher(2 * self.increasing.len(), Default::default());
        set.extend(self.increasing.drain(..));
        let first = set.insert(id);
        self.set = Some(set);
        first
    }
}

/// The `filterType` a SOAP key type is looked up by: the one table on
/// [`LeadKeyType::rest_filter_type`].
pub(crate) fn filter_type(key_type: LeadKeyType) -> Option<&'static str> {
    key_type.rest_filter_type()
}

/// Refuses, before anything is sent, a request holding a key type REST
/// cannot look up (see [`filter_type`]): *not sent*, so
/// [`Fallback`](crate::Fallback) with REST first serves it over SOAP.
pub(crate) fn check_expressible(leads: &[LeadKey]) -> Result<(), Error> {
    let mut cannot = leads
        .iter()
        .enumerate()
        .filter(|(_, key)| filter_type(key.key_type()).is_none());
    let Some((position, first)) = cannot.next() else {
        return Ok(());
    };
    let more = cannot.count();
    // The value is not quoted: it may be long, and it is the caller's data.
    Err(Error::invalid(
        format!("lead key {} ({})", position + 1, first.key_type()),
        format!(
            "Marketo's REST API documents no way to look up a lead by {} (no such leads.json filterType){}; send it over SOAP, or name the lead by IDNUM or EMAIL",
            first.key_type(),
            if more == 0 {
                String::new()
            } else {
                format!(", nor the {more} other such key(s) of this request")
            }
        ),
    ))
}

/// How values compare: emails without ASCII case, as Marketo does.
/// Borrowed unless a copy must be lowered.
fn normalize(key_type: LeadKeyType, value: &str) -> Cow<'_, str> {
    match key_type {
        LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => {
            let trimmed = value.trim();
            if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(trimmed.to_ascii_lowercase())
            } else {
                Cow::Borrowed(trimmed)
            }
        }
        _ => Cow::Borrowed(value),
    }
}

/// The cookies of a `cookies` field: Marketo keeps several there, separated
/// by commas.
fn cookies(field: &str) -> impl Iterator<Item = &str> {
    field.split(',').map(str::trim).filter(|c| !c.is_empty())
}

#[derive(Deserialize)]
struct CampaignRecord {
    id: u32,
    name: String,
    #[serde(rename = "programName", default)]
    program_name: String,
    #[serde(rename = "type", default)]
    kind: String,
}

impl crate::rest::wire::Record for CampaignRecord {}

/// One `leads.json` look-up: a key type and the values it asks for (the
/// keys' values as written, borrowed from the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadQuery<'k> {
    pub(crate) key_type: LeadKeyType,
    pub(crate) values: Vec<&'k str>,
    /// For `IDNUM`, `values` as numbers, in the same order; else empty.
    pub(crate) ids: Vec<u32>,
}

const PATH_START: &str = "/rest/v1/leads.json?filterType=";
const PATH_VALUES: &str = "&filterValues=";
const PATH_FIELDS: &str = "&fields=id";
const PATH_PAGE: &str = "&nextPageToken=";

/// The length of [`LeadQuery::path`] (first page) for `filter` and
/// encoded values of `values_len` bytes, commas included.
fn path_len(filter: &str, values_len: usize) -> usize {
    let fields = if filter == "id" { 0 } else { 1 + filter.len() };
    PATH_START.len() + filter.len() + PATH_VALUES.len() + values_len + PATH_FIELDS.len() + fields
}

impl LeadQuery<'_> {
    /// `/rest/v1/leads.json?filterType=..&filterValues=..&fields=id,..`
    pub(crate) fn path(&self, page: Option<&str>) -> String {
        let filter = filter_type(self.key_type).unwrap_or("id");
        // Ids are decimal digits: nothing to escape.
        let plain = self.ids.len() == self.values.len();
        let values_len = self
            .values
            .iter()
            .map(|v| if plain { v.len() } else { encoded_len(v) } + 1)
            .sum::<usize>()
            .saturating_sub(1);
        let page_len = page.map_or(0, |page| PATH_PAGE.len() + encoded_len(page));
        let mut path = String::with_capacity(path_len(filter, values_len) + page_len);
        path.push_str(PATH_START);
        path.push_str(filter);
        path.push_str(PATH_VALUES);
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                path.push(',');
            }
            if plain {
                path.push_str(value);
            } else {
                encode_into(&mut path, value);
            }
        }
        path.push_str(PATH_FIELDS);
        if filter != "id" {
            path.push(',');
            path.push_str(filter);
        }
        if let Some(page) = page {
            path.push_str(PATH_PAGE);
            encode_into(&mut path, page);
        }
        path
    }
}

/// Groups the keys into look-ups of at most 300 values whose URL stays
/// under [`MAX_URL_BYTES`], one key type per look-up; `IDNUM` keys are
/// checked too (`filterType=id`), so an unknown id is reported by key.
/// Duplicate values are asked once. Values holding a comma, too long for a
/// URL of their own, or of a type REST cannot look up (refused earlier by
/// [`check_expressible`]) are returned apart, to be reported unmatched.
pub(crate) fn plan_lead_queries<'k>(
    base_len: usize,
    keys: impl IntoIterator<Item = &'k LeadKey>,
) -> (Vec<LeadQuery<'k>>, Vec<&'k LeadKey>) {
    let keys = keys.into_iter();
    let count = keys.size_hint().0;
    // Per key type (at most 9), its values in the order first given.
    let mut by_type: Vec<LeadQuery<'k>> = Vec::new();
    // IDNUM values are canonical decimal ids (`LeadKey` checks it):
    // compared as numbers. While they come in increasing order (as they
    // mostly do) none can repeat an earlier one; from the first that does
    // not, a set de-duplicates them.
    let mut last_id = 0;
    let mut seen_ids: Option<IdSet> = None;
    let mut seen: HashSet<(LeadKeyType, Cow<'k, str>)> = HashSet::new();
    let mut inexpressible = Vec::new();
    for key in keys {
        let key_type = key.key_type();
        let Some(filter) = filter_type(key_type) else {
            inexpressible.push(key);
            continue;
        };
        let value = key.value();
        let id = match key_type {
            LeadKeyType::Idnum => match key.id_number() {
                Some(id) => Some(id),
                // Cannot happen: `LeadKey` only holds canonical ids.
                None => {
                    inexpressible.push(key);
                    continue;
                }
            },
            _ => None,
        };
        // A comma would split the value in `filterValues`; a value too long
        // for any URL would be answered 414 and fail every other key with it.
        // (Decimal digits hold no comma and need no escaping.)
        let encoded = match id {
            Some(_) => value.len(),
            None => encoded_len(value),
        };
        if base_len + path_len(filter, encoded) > MAX_URL_BYTES
            || (id.is_none() && value.contains(','))
        {
            inexpressible.push(key);
            continue;
        }
        let first = match id {
            Some(id) => match seen_ids.as_mut() {
                None if id > last_id => {
                    last_id = id;
                    true
                }
                None => {
                    let mut set = IdSet::with_capacity_and_hasher(count, Default::default());
                    set.extend(by_type.iter().flat_map(|q| q.ids.iter().copied()));
                    let first = set.insert(id);
                    seen_ids = Some(set);
                    first
                }
                Some(set) => set.insert(id),
            },
            None => seen.insert((key_type, normalize(key_type, value))),
        };
        if !first {
            continue;
        }
        let at = match by_type.iter().position(|q| q.key_type == key_type) {
            Some(at) => at,
            None => {
                // Most requests hold one key type: room for all.
                by_type.push(LeadQuery {
                    key_type,
                    values: Vec::with_capacity(count),
                    ids: Vec::with_capacity(if id.is_some() { count } else { 0 }),
                });
                by_type.len() - 1
            }
        };
        let values = &mut by_type[at];
        values.values.push(value);
        if let Some(id) = id {
            values.ids.push(id);
        }
    }
    let mut queries = Vec::new();
    by_type.sort_by_key(|q| q.key_type);
    for mut all in by_type {
        // Where each look-up ends, then the values split there (mostly
        // they all fit in one).
        let empty_len = base_len + path_len(filter_type(all.key_type).unwrap_or("id"), 0);
        let mut ends = Vec::new();
        let (mut start, mut url_len) = (0, empty_len);
        for (i, value) in all.values.iter().enumerate() {
            let added = match all.ids.get(i) {
                Some(_) => value.len(),
                None => encoded_len(value),
            } + 1;
            if i > start && (i - start >= MAX_FILTER_VALUES || url_len + added > MAX_URL_BYTES) {
                ends.push(i);
                start = i;
                url_len = empty_len;
            }
            url_len += added;
        }
        let mut tails = Vec::with_capacity(ends.len());
        for &end in ends.iter().rev() {
            tails.push(LeadQuery {
                key_type: all.key_type,
                values: all.values.split_off(end),
                ids: if all.ids.is_empty() {
                    Vec::new()
                } else {
                    all.ids.split_off(end)
                },
            });
        }
        if !all.values.is_empty() {
            queries.push(all);
        }
        queries.extend(tails.into_iter().rev());
    }
    (queries, inexpressible)
}

/// The leads each looked-up value matched. Values that matched nothing
/// are absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LeadIds {
    /// The ids `IDNUM` look-ups found: sorted, once each. An id matches
    /// only itself, so an `IDNUM` key names one lead or none.
    ids: Vec<u32>,
    /// Other key types: per type, the ids each normalized value matched,
    /// lowest first.
    by_value: Vec<(LeadKeyType, HashMap<String, Vec<u32>>)>,
}

impl LeadIds {
    /// Adds what one page of `query`'s answer matched: each record is
    /// mapped back by its filter field (for `id`, the record's id; for
    /// `cookies`, any one of its comma-separated cookies); a record that
    /// cannot be mapped back to a value asked for is ignored, so its key
    /// stays unmatched and is reported. Call [`finish`](LeadIds::finish)
    /// after the last page.
    pub(crate) fn absorb(&mut self, query: &LeadQuery<'_>, records: &[LeadRecord]) {
        let key_type = query.key_type;
        if key_type == LeadKeyType::Idnum {
            // The ids asked and the ids answered (Marketo answers in id
            // order), both sorted: the ones in both, in one walk.
            let asked: Cow<'_, [u32]> = if query.ids.is_sorted() {
                Cow::Borrowed(&query.ids)
            } else {
                let mut sorted = query.ids.clone();
                sorted.sort_unstable();
                Cow::Owned(sorted)
            };
            let answered: Cow<'_, [u32]> = {
                let ids = records.iter().filter_map(|record| record.id);
                if ids.clone().is_sorted() {
                    // Marketo answers in id order: no copy to sort.
                    self.ids.reserve(records.len());
                    return self.absorb_sorted_ids(&asked, ids);
                }
                let mut sorted: Vec<u32> = ids.collect();
                sorted.sort_unstable();
                Cow::Owned(sorted)
            };
            self.absorb_sorted_ids(&asked, answered.iter().copied());
            return;
        }
        let asked: HashSet<Cow<'_, str>> = query
            .values
            .iter()
            .map(|v| normalize(key_type, v))
            .collect();
        let filter = filter_type(key_type).unwrap_or("id");
        let map = match self.by_value.iter().position(|(t, _)| *t == key_type) {
            Some(at) => &mut self.by_value[at].1,
            None => {
                self.by_value.push((key_type, HashMap::new()));
                let last = self.by_value.len() - 1;
                &mut self.by_value[last].1
            }
        };
        for record in records {
            let Some(id) = record.id else {
                continue;
            };
            let mut matched: Vec<&str> = match record.field(filter) {
                Some(field) => {
                    let normalized = normalize(key_type, field);
                    let mut values: Vec<&str> = Vec::new();
                    if let Some(asked) = asked.get(normalized.as_ref()) {
                        values.push(asked);
                    }
                    if key_type == LeadKeyType::Cookie {
                        values.extend(
                            cookies(field)
                                .filter_map(|c| asked.get(c))
                                .map(|c| c.as_ref()),
                        );
                    }
                    values
                }
                // A single value needs no field to map back.
                None if asked.len() == 1 => asked.iter().map(|v| v.as_ref()).collect(),
                None => Vec::new(),
            };
            matched.sort_unstable();
            matched.dedup();
            for value in matched {
                let leads = match map.get_mut(value) {
                    Some(leads) => leads,
                    None => map.entry(value.to_owned()).or_default(),
                };
                if let Err(at) = leads.binary_search(&id) {
                    leads.insert(at, id);
                }
            }
        }
    }

    /// Keeps the ids of `answered` (sorted) that are in `asked` (sorted).
    fn absorb_sorted_ids(&mut self, asked: &[u32], answered: impl Iterator<Item = u32>) {
        let mut asked = asked.iter().peekable();
        for id in answered {
            while asked.next_if(|&&a| a < id).is_some() {}
            match asked.peek() {
                Some(&&a) if a == id => self.ids.push(id),
                Some(_) => {}
                None => break,
            }
        }
    }

    /// Makes the ids found searchable, after the last [`absorb`](LeadIds::absorb).
    pub(crate) fn finish(&mut self) {
        self.ids.sort_unstable();
        self.ids.dedup();
    }
}

/// Plans the look-ups of `leads`, reads `answers[i]` as the (one-page)
/// answer to look-up `i`, and resolves every key: returns the look-up
/// paths and hands `each` every key's leads, in order. What the client does around its HTTP calls, for the
/// bench and for the comparison with the old look-up.
#[cfg(any(test, feature = "bench-baseline"))]
pub(crate) fn look_up(
    base_len: usize,
    leads: &[LeadKey],
    answers: &[&[u8]],
    each: &mut dyn FnMut(&[u32]),
) -> Result<Vec<String>, Error> {
    let (queries, _) = plan_lead_queries(base_len, leads);
    let mut ids = LeadIds::default();
    let mut paths = Vec::with_capacity(queries.len());
    for (query, answer) in queries.iter().zip(answers) {
        paths.push(query.path(None));
        let page = <LeadRecord as crate::rest::wire::Record>::read_page(200, answer)?;
        ids.absorb(query, &page.result);
    }
    ids.finish();
    let mut cursor = 0;
    for key in leads {
        match resolve_next(&ids, key, &mut cursor) {
            Resolved::One(id) => each(std::slice::from_ref(&id)),
            Resolved::None => each(&[]),
            Resolved::Several(several) => each(several),
        }
    }
    Ok(paths)
}

/// What a key resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved<'a> {
    /// Exactly one lead.
    One(u32),
    /// No lead (or the key could not be looked up).
    None,
    /// Several leads, lowest id first.
    Several(&'a [u32]),
}

/// [`resolve`], for keys taken in turn: `cursor` keeps where the last
/// `IDNUM` key's lead was found, so ids that come in increasing order are
/// found without a search.
pub(crate) fn resolve_next<'a>(
    ids: &'a LeadIds,
    key: &LeadKey,
    cursor: &mut usize,
) -> Resolved<'a> {
    if key.key_type() != LeadKeyType::Idnum {
        return resolve(ids, key);
    }
    let Some(id) = key.id_number() else {
        return Resolved::None;
    };
    let found = if ids.ids.get(*cursor) == Some(&id) {
        Some(*cursor)
    } else {
        ids.ids.binary_search(&id).ok()
    };
    match found {
        Some(at) => {
            *cursor = at + 1;
            Resolved::One(id)
        }
        None => Resolved::None,
    }
}

/// What `key` resolved to, from the look-ups' answers.
pub(crate) fn resolve<'a>(ids: &'a LeadIds, key: &LeadKey) -> Resolved<'a> {
    let key_type = key.key_type();
    if key_type == LeadKeyType::Idnum {
        return match key.id_number() {
            Some(id) if ids.ids.binary_search(&id).is_ok() => Resolved::One(id),
            _ => Resolved::None,
        };
    }
    let found = ids
        .by_value
        .iter()
        .find(|(t, _)| *t == key_type)
        .and_then(|(_, map)| map.get(normalize(key_type, key.value()).as_ref()))
        .map(Vec::as_slice);
    match found {
        None | Some([]) => Resolved::None,
        Some([one]) => Resolved::One(*one),
        Some(several) => Resolved::Several(several),
    }
}

/// `campaigns.json` filtered by name and program. Both filters take
/// comma-separated lists, so a name holding a comma is left out of the query
/// (the answer is matched exactly afterwards).
pub(crate) fn campaigns_path(campaign: &str, program: &str) -> String {
    let mut filters = Vec::new();
    if !campaign.contains(',') {
        filters.push(format!("name={}", encode(campaign)));
    }
    if !program.contains(',') {
        filters.push(format!("programName={}", encode(program)));
    }
    if filters.is_empty() {
        "/rest/v1/campaigns.json".to_owned()
    } else {
        format!("/rest/v1/campaigns.json?{}", filters.join("&"))
    }
}

impl RestClient {
    /// The id of the campaign `campaign` in program `program`: exactly one
    /// must match. Cached for the client's lifetime.
    pub(crate) fn lookup_campaign(&self, campaign: &str, program: &str) -> Result<u32, Error> {
        // Its refusal quotes the campaigns the search returned: server text.
        self.find_campaign(campaign, program)
            .map_err(|err| self.scrub(err))
    }

    fn find_campaign(&self, campaign: &str, program: &str) -> Result<u32, Error> {
        let cache_key = (program.to_owned(), campaign.to_owned());
        if let Some(id) = self.campaign_cache_get(&cache_key) {
            return Ok(id);
        }
        let path = campaigns_path(campaign, program);
        let mut records: Vec<CampaignRecord> = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let url = match &page {
                Some(token) => format!(
                    "{path}{}nextPageToken={}",
                    if path.contains('?') { '&' } else { '?' },
                    encode(token)
                ),
                None => path.clone(),
            };
            let answer = self.api_get::<CampaignRecord>(&url)?;
            records.extend(answer.result);
            page = answer.next_page_token;
            if page.is_none() {
                break;
            }
        }
        let matches: Vec<&CampaignRecord> = records
            .iter()
            .filter(|r| r.name == campaign && r.program_name == program)
            .collect();
        match matches.as_slice() {
            [one] => {
                self.campaign_cache_put(cache_key, one.id);
                Ok(one.id)
            }
            [] => {
                let near: Vec<String> = records
                    .iter()
                    .map(|r| format!("{} {:?} in {:?}", r.id, r.name, r.program_name))
                    .collect();
                Err(Error::Lookup(format!(
                    "no campaign named {campaign:?} in program {program:?}{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (the search returned: {})", near.join(", "))
                    }
                )))
            }
            several => Err(Error::Lookup(format!(
                "{} campaigns are named {campaign:?} in program {program:?}: {}; request by id instead",
                several.len(),
                several
                    .iter()
                    .map(|r| format!("id {} ({})", r.id, r.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Runs `queries` and maps every value asked for to the leads it
    /// matched, all of them: a value that matched several leads is
    /// [ambiguous](Resolved::Several), never settled by a guess (see
    /// [`LeadIds::absorb`]).
    pub(crate) fn lookup_leads(&self, queries: &[LeadQuery<'_>]) -> Result<LeadIds, Error> {
        let mut ids = LeadIds::default();
        for query in queries {
            let mut page: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let answer = self.api_get::<LeadRecord>(&query.path(page.as_deref()))?;
                ids.absorb(query, &answer.result);
                page = answer.next_page_token;
                if page.is_none() {
                    break;
                }
            }
        }
        ids.finish();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_components() {
        assert_eq!(encode("a b&c=d/é,"), "a%20b%26c%3Dd%2F%C3%A9%2C");
        assert_eq!(encode("Lead-1.x_y~"), "Lead-1.x_y~");
    }

    #[test]
    fn queries_batch_at_300_and_under_8kb() {
        let keys: Vec<LeadKey> = (0..700)
            .map(|i| LeadKey::email(format!("lead{i}@example.com")).unwrap())
            .chain([
                LeadKey::id(5).unwrap(),
                LeadKey::email("LEAD0@example.com").unwrap(),
            ])
            .collect();
        let (queries, odd) = plan_lead_queries(40, &keys);
        assert!(odd.is_empty());
        let sizes: Vec<usize> = queries.iter().map(|q| q.values.len()).collect();
        // The id is checked too, in a look-up of its own type.
        assert_eq!(sizes, [1, 300, 300, 100]);
        assert_eq!(
            queries[0].path(None),
            "/rest/v1/leads.json?filterType=id&filterValues=5&fields=id"
        );
        let long: Vec<LeadKey> = (0..300)
            .map(|i| LeadKey::email(format!("{}{i}@example.com", "x".repeat(60))).unwrap())
            .collect();
        let (queries, _) = plan_lead_queries(40, &long);
        assert!(queries.len() > 1);
        for q in &queries {
            assert!(
                40 + q.path(None).len() <= MAX_URL_BYTES,
                "{}",
                q.path(None).len()
            );
        }
        assert_eq!(queries.iter().map(|q| q.values.len()).sum::<usize>(), 300);
    }

    #[test]
    fn campaign_paths_leave_out_names_with_commas() {
        assert_eq!(
            campaigns_path("A b", "P"),
            "/rest/v1/campaigns.json?name=A%20b&programName=P"
        );
        assert_eq!(
            campaigns_path("Welcome, new lead", "P"),
            "/rest/v1/campaigns.json?programName=P"
        );
        assert_eq!(campaigns_path("a,b", "c,d"), "/rest/v1/campaigns.json");
    }

    #[test]
    fn overlong_values_are_not_looked_up() {
        let long = LeadKey::new(LeadKeyType::Cookie, "x&".repeat(2048)).unwrap();
        let fine = LeadKey::email("a@b.c").unwrap();
        let (queries, odd) = plan_lead_queries(40, [&long, &fine]);
        assert_eq!(odd, [&long]);
        assert_eq!(queries.len(), 1);
    }

    #[test]
    fn commas_and_cookies() {
        let keys = [
            LeadKey::email("a,b@example.com").unwrap(),
            LeadKey::new(LeadKeyType::Cookie, "c1").unwrap(),
            LeadKey::new(LeadKeyType::Cookie, "c2").unwrap(),
        ];
        let (queries, odd) = plan_lead_queries(0, &keys);
        assert_eq!(odd.len(), 1);
        // Cookies are mapped back by value, so they batch like the rest.
        assert_eq!(queries.len(), 1);
        assert_eq!(
            queries[0].path(None),
            "/rest/v1/leads.json?filterType=cookies&filterValues=c1,c2&fields=id,cookies"
        );
    }

    #[test]
    fn only_documented_filter_types_are_used() {
        for key_type in LeadKeyType::ALL {
            match filter_type(key_type) {
                Some(filter) => assert!(
                    crate::lead_fields::DOCUMENTED_FILTER_TYPES.contains(&filter),
                    "{filter}"
                ),
                None => assert_eq!(key_type, LeadKeyType::LeadOwnerEmail),
            }
        }
        let owner = LeadKey::new(LeadKeyType::LeadOwnerEmail, "o@x.com").unwrap();
        let err = check_expressible(&[LeadKey::id(1).unwrap(), owner.clone(), owner]).unwrap_err();
        assert_eq!(err.delivery(), crate::Delivery::NotSent);
        assert!(matches!(err, Error::InvalidInput { .. }));
        assert!(err.to_string().contains("LEADOWNEREMAIL"), "{err}");
        assert!(check_expressible(&[LeadKey::id(1).unwrap()]).is_ok());
    }

    fn records(json: &str) -> Vec<LeadRecord> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn resolves_one_none_or_several() {
        let email = |v: &str| LeadKey::email(v).unwrap();
        let keys = [email("A@X.com"), email("b@x.com"), email("c@x.com")];
        let (queries, _) = plan_lead_queries(0, &keys);
        let mut ids = LeadIds::default();
        ids.absorb(
            &queries[0],
            &records(
                r#"[{"id":4,"email":"a@x.com"},{"id":9,"email":"B@x.com"},{"id":4,"email":"b@x.com"},
                    {"id":5,"email":"z@x.com"},{"email":"c@x.com"},{"id":"6","email":"c@x.com"}]"#,
            ),
        );
        ids.finish();
        assert_eq!(resolve(&ids, &email("a@x.com")), Resolved::One(4));
        assert_eq!(resolve(&ids, &email("b@x.com")), Resolved::Several(&[4, 9]));
        assert_eq!(resolve(&ids, &email("c@x.com")), Resolved::None);
        assert_eq!(resolve(&ids, &LeadKey::id(4).unwrap()), Resolved::None);
    }

    #[test]
    fn ids_match_only_the_ids_asked_in_their_own_look_up() {
        let keys: Vec<LeadKey> = [7, 1024, 2048, 7, 5]
            .into_iter()
            .map(|i| LeadKey::id(i).unwrap())
            .collect();
        let (queries, _) = plan_lead_queries(0, &keys);
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].values, ["7", "1024", "2048", "5"]);
        let mut ids = LeadIds::default();
        // 3 was not asked; "5" is a string, 2048.0 a float: neither counts.
        ids.absorb(
            &queries[0],
            &records(r#"[{"id":1024},{"id":3},{"id":"5"},{"id":2048.0},{"id":7},{"id":7},[1],5]"#),
        );
        ids.finish();
        let got: Vec<Resolved<'_>> = keys.iter().map(|k| resolve(&ids, k)).collect();
        assert_eq!(
            got,
            [
                Resolved::One(7),
                Resolved::One(1024),
                Resolved::None,
                Resolved::One(7),
                Resolved::None
            ]
        );
        assert_eq!(resolve(&ids, &LeadKey::id(3).unwrap()), Resolved::None);
        let mut cursor = 0;
        let next: Vec<Resolved<'_>> = keys
            .iter()
            .chain(&keys)
            .map(|k| resolve_next(&ids, k, &mut cursor))
            .collect();
        assert_eq!(next, [got.clone(), got].concat());
    }

    #[test]
    fn ids_once_says_first_once_per_id_in_any_order() {
        let mut once = IdsOnce::default();
        let ids = [3, 5, 9, 5, 1, 9, 12, 3, 2, 12, 1024, 2048, 1024];
        let firsts: Vec<bool> = ids.iter().map(|&id| once.first(id)).collect();
        let mut seen = HashSet::new();
        let expected: Vec<bool> = ids.iter().map(|&id| seen.insert(id)).collect();
        assert_eq!(firsts, expected);
        let mut once = IdsOnce::default();
        assert!((1..=300).all(|id| once.first(id)));
        assert!(once.set.is_none(), "increasing ids are not hashed");
        assert!(!once.first(300) && !once.first(1) && once.first(301));
    }

    #[test]
    fn path_len_is_the_length_of_the_path() {
        for key in [
            LeadKey::id(1002200).unwrap(),
            LeadKey::email("a b@é.com").unwrap(),
            LeadKey::new(LeadKeyType::Cookie, "id:123-ABC&token:_mch-x").unwrap(),
            LeadKey::new(LeadKeyType::SfdcLeadId, "00Q5000000abcde").unwrap(),
        ] {
            let (queries, _) = plan_lead_queries(0, [&key]);
            let filter = filter_type(key.key_type()).unwrap();
            let path = queries[0].path(None);
            assert_eq!(
                path_len(filter, encoded_len(key.value())),
                path.len(),
                "{path}"
            );
            assert_eq!(path.capacity(), path.len(), "{path}");
            assert!(queries[0]
                .path(Some("a/b"))
                .ends_with("&nextPageToken=a%2Fb"));
        }
    }
}

/// Today's look-up against the old one (`lookup_baseline`, the code before
/// it was made fast): the same URLs, the same keys resolved to the same
/// leads, the same errors, for any keys and any answers.
#[cfg(test)]
mod same_as_before {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::rest::lookup_baseline;
    use test_support::{edits, hostile, mutate};

    type Looked = Result<(Vec<String>, Vec<Vec<u32>>), String>;

    fn today(base_len: usize, leads: &[LeadKey], answers: &[&[u8]]) -> Looked {
        let mut resolved = Vec::new();
        look_up(base_len, leads, answers, &mut |ids| {
            resolved.push(ids.to_vec())
        })
        .map(|paths| (paths, resolved))
        .map_err(|e| e.to_string())
    }

    fn before(base_len: usize, leads: &[LeadKey], answers: &[&[u8]]) -> Looked {
        let mut resolved = Vec::new();
        lookup_baseline::look_up(base_len, leads, answers, &mut |ids| {
            resolved.push(ids.to_vec())
        })
        .map(|paths| (paths, resolved))
        .map_err(|e| e.to_string())
    }

    const VALUES: &[&str] = &[
        "a@x.com",
        "A@x.com",
        " b@x.com ",
        "b@X.COM",
        "c,d@x.com",
        "é@x.com",
        "c1",
        "c2",
        "c1,c2",
        " c2 , c3",
        "id:1&t:2",
        "00Q5000000abcde",
        "7",
        "12",
        "x y",
    ];

    fn key() -> impl Strategy<Value = Option<LeadKey>> {
        prop_oneof![
            3 => (1u32..40).prop_map(|id| LeadKey::id(id).ok()),
            1 => prop::sample::select(vec![u32::MAX / 2, 1024, 2048, 3_000_000_000])
                .prop_map(|id| LeadKey::id(id).ok()),
            4 => (
                prop::sample::select(vec![
                    LeadKeyType::Email,
                    LeadKeyType::Cookie,
                    LeadKeyType::SfdcLeadId,
                    LeadKeyType::LeadOwnerEmail,
                ]),
                prop_oneof![4 => prop::sample::select(VALUES).prop_map(str::to_owned), 1 => hostile()],
            )
                .prop_map(|(t, v)| LeadKey::new(t, v).ok()),
        ]
    }

    /// A JSON value a record field may hold.
    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u64..45).prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "-3", "-0", "4294967296", "1e2", "7.0", "null", "true", "[1,{\"id\":2}]",
                "{\"id\":3}", "18446744073709551616", "\"7\"",
            ])
            .prop_map(str::to_owned),
            4 => prop::sample::select(VALUES).prop_map(|v| serde_json::to_string(v).unwrap()),
            1 => hostile().prop_map(|v| serde_json::to_string(&v).unwrap()),
        ]
    }

    fn record() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => vec(
                (
                    prop::sample::select(vec!["id", "id", "email", "cookies", "sfdcLeadId", "name"]),
                    field_value(),
                ),
                0..4,
            )
            .prop_map(|fields| {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
            1 => field_value(),
        ]
    }

    fn answer() -> impl Strategy<Value = Vec<u8>> {
        (
            vec(record(), 0..12),
            any::<bool>(),
            proptest::option::of(edits()),
        )
            .prop_map(|(records, success, edits)| {
                let mut doc = format!(
                    r#"{{"requestId":"1#2","success":{success},"result":[{}]}}"#,
                    records.join(",")
                )
                .into_bytes();
                if let Some(edits) = edits {
                    mutate(&mut doc, &edits, &[b"{", b"]", b"\"", b"[[", b"\\u"], 16);
                }
                doc
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn same_urls_leads_and_errors(
            keys in vec(key(), 0..40),
            base_len in prop::sample::select(vec![0usize, 40, 7_900, 7_990]),
            answers in vec(answer(), 1..4),
        ) {
            let keys: Vec<LeadKey> = keys.into_iter().flatten().collect();
            let (queries, odd) = plan_lead_queries(base_len, &keys);
            let (old_queries, old_odd) = lookup_baseline::plan_lead_queries(base_len, &keys);
            prop_assert_eq!(odd, old_odd);
            let paths: Vec<String> = queries.iter().map(|q| q.path(Some("p/1"))).collect();
            let old_paths: Vec<String> = old_queries.iter().map(|q| q.path(Some("p/1"))).collect();
            prop_assert_eq!(paths, old_paths);
            let answers: Vec<&[u8]> = answers.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(today(base_len, &keys, &answers), before(base_len, &keys, &answers));
        }
    }

    #[test]
    fn hundreds_of_ids_and_emails() {
        let mut keys: Vec<LeadKey> = (1..=700).map(|i| LeadKey::id(i * 3).unwrap()).collect();
        keys.extend((0..400).map(|i| LeadKey::email(format!("Lead{i}@Example.com")).unwrap()));
        keys.push(LeadKey::id(3).unwrap());
        let (queries, _) = plan_lead_queries(40, &keys);
        let answers: Vec<Vec<u8>> = queries
            .iter()
            .map(|q| {
                let records: Vec<String> = q
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 7 != 0)
                    .map(|(i, v)| match q.key_type {
                        LeadKeyType::Idnum => format!(r#"{{"id":{v}}}"#),
                        // Every 5th email names two leads.
                        _ if i % 5 == 0 => format!(
                            r#"{{"id":{},"email":"{}"}},{{"id":{},"email":"{v}"}}"#,
                            1000 + i,
                            v.to_lowercase(),
                            2000 + i
                        ),
                        _ => format!(r#"{{"id":{},"email":"{}"}}"#, 1000 + i, v.to_lowercase()),
                    })
                    .collect();
                format!(r#"{{"success":true,"result":[{}]}}"#, records.join(",")).into_bytes()
            })
            .collect();
        let answers: Vec<&[u8]> = answers.iter().map(Vec::as_slice).collect();
        let got = today(40, &keys, &answers).unwrap();
        assert_eq!(got, before(40, &keys, &answers).unwrap());
        assert_eq!(got.0.len(), 5, "3 id look-ups, 2 email look-ups");
        assert_eq!(
            got.1[0],
            Vec::<u32>::new(),
            "the 1st value of a look-up is not answered"
        );
        assert_eq!(got.1[1], [6]);
        assert!(
            got.1.iter().any(|ids| ids.len() > 1),
            "some emails are ambiguous"
        );
    }

    #[test]
    fn too_deep_records_fail_as_before() {
        let keys = [LeadKey::id(1).unwrap()];
        for depth in [100, 123, 124, 125, 126, 130, 100_000] {
            for field in ["id", "name", "email"] {
                let body = format!(
                    r#"{{"success":true,"result":[{{"{field}":{}{}}}]}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                );
                let old = before(0, &keys, &[body.as_bytes()]);
                assert_eq!(today(0, &keys, &[body.as_bytes()]), old, "{field} {depth}");
                if depth <= 100 || depth >= 130 {
                    assert_eq!(old.is_err(), depth >= 130, "{field} {depth}: {old:?}");
                }
            }
        }
    }
}
