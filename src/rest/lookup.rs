//! Look-ups that let SOAP-shaped requests run over REST: campaign name +
//! program name → campaign id, lead keys → lead ids.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::Deserialize;

use crate::error::Error;
use crate::request::{LeadKey, LeadKeyType};
use crate::rest::client::RestClient;

/// At most this many `filterValues` per `leads.json` call.
pub(crate) const MAX_FILTER_VALUES: usize = 300;
/// Keep look-up URLs under this many bytes (servers refuse 8 KB and more).
pub(crate) const MAX_URL_BYTES: usize = 8_000;
/// Stop following `nextPageToken` after this many pages.
const MAX_PAGES: usize = 1_000;

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
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
fn normalize(key_type: LeadKeyType, value: &str) -> String {
    match key_type {
        LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => value.trim().to_ascii_lowercase(),
        _ => value.to_owned(),
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

/// One `leads.json` look-up: a key type and the values it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadQuery {
    pub(crate) key_type: LeadKeyType,
    pub(crate) values: Vec<String>,
}

impl LeadQuery {
    /// `/rest/v1/leads.json?filterType=..&filterValues=..&fields=id,..`
    pub(crate) fn path(&self, page: Option<&str>) -> String {
        let filter = filter_type(self.key_type).unwrap_or("id");
        let values: Vec<String> = self.values.iter().map(|v| encode(v)).collect();
        let mut path = format!(
            "/rest/v1/leads.json?filterType={filter}&filterValues={}&fields=id",
            values.join(",")
        );
        if filter != "id" {
            let _ = write!(path, ",{filter}");
        }
        if let Some(page) = page {
            let _ = write!(path, "&nextPageToken={}", encode(page));
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
) -> (Vec<LeadQuery>, Vec<&'k LeadKey>) {
    let mut by_type: HashMap<LeadKeyType, Vec<String>> = HashMap::new();
    let mut seen: HashSet<(LeadKeyType, String)> = HashSet::new();
    let mut inexpressible = Vec::new();
    for key in keys {
        if filter_type(key.key_type()).is_none() {
            inexpressible.push(key);
            continue;
        }
        // A comma would split the value in `filterValues`; a value too long
        // for any URL would be answered 414 and fail every other key with it.
        let alone = base_len
            + LeadQuery {
                key_type: key.key_type(),
                values: vec![key.value().to_owned()],
            }
            .path(None)
            .len();
        if key.value().contains(',') || alone > MAX_URL_BYTES {
            inexpressible.push(key);
            continue;
        }
        if seen.insert((key.key_type(), normalize(key.key_type(), key.value()))) {
            by_type
                .entry(key.key_type())
                .or_default()
                .push(key.value().to_owned());
        }
    }
    let mut queries = Vec::new();
    let mut types: Vec<_> = by_type.into_iter().collect();
    types.sort_by_key(|(t, _)| *t);
    for (key_type, values) in types {
        let empty = LeadQuery {
            key_type,
            values: Vec::new(),
        };
        let mut current = empty.clone();
        let mut url_len = base_len + current.path(None).len();
        for value in values {
            let added = encode(&value).len() + 1;
            if !current.values.is_empty()
                && (current.values.len() >= MAX_FILTER_VALUES || url_len + added > MAX_URL_BYTES)
            {
                queries.push(std::mem::replace(&mut current, empty.clone()));
                url_len = base_len + current.path(None).len();
            }
            url_len += added;
            current.values.push(value);
        }
        if !current.values.is_empty() {
            queries.push(current);
        }
    }
    (queries, inexpressible)
}

/// The ids of the leads each looked-up value matched, lowest first, by
/// (key type, normalized value). Values that matched nothing are absent.
pub(crate) type LeadIds = HashMap<(LeadKeyType, String), Vec<u32>>;

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

/// What `key` resolved to, from the look-ups' answers.
pub(crate) fn resolve<'a>(ids: &'a LeadIds, key: &LeadKey) -> Resolved<'a> {
    match ids
        .get(&(key.key_type(), normalize(key.key_type(), key.value())))
        .map(Vec::as_slice)
    {
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
    /// [ambiguous](Resolved::Several), never settled by a guess. A record is
    /// mapped back by its filter field (for `id`, the record's id; for
    /// `cookies`, any one of its comma-separated cookies); a record that
    /// cannot be mapped back to a value asked for is ignored, so its key
    /// stays unmatched and is reported.
    pub(crate) fn lookup_leads(&self, queries: &[LeadQuery]) -> Result<LeadIds, Error> {
        let mut ids = LeadIds::new();
        for query in queries {
            let key_type = query.key_type;
            let asked: HashSet<String> = query
                .values
                .iter()
                .map(|v| normalize(key_type, v))
                .collect();
            let filter = filter_type(key_type).unwrap_or("id");
            let mut page: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let answer = self.api_get::<serde_json::Value>(&query.path(page.as_deref()))?;
                for record in &answer.result {
                    let Some(id) = record
                        .get("id")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|id| u32::try_from(id).ok())
                    else {
                        continue;
                    };
                    let field = if key_type == LeadKeyType::Idnum {
                        Some(id.to_string())
                    } else {
                        record
                            .get(filter)
                            .and_then(|v| v.as_str())
                            .map(str::to_owned)
                    };
                    let mut matched: Vec<String> = match field {
                        Some(field) => {
                            let mut values = vec![normalize(key_type, &field)];
                            if key_type == LeadKeyType::Cookie {
                                values.extend(cookies(&field).map(str::to_owned));
                            }
                            values.retain(|v| asked.contains(v));
                            values
                        }
                        // A single value needs no field to map back.
                        None if asked.len() == 1 => asked.iter().cloned().collect(),
                        None => Vec::new(),
                    };
                    matched.sort_unstable();
                    matched.dedup();
                    for value in matched {
                        let leads = ids.entry((key_type, value)).or_default();
                        if let Err(at) = leads.binary_search(&id) {
                            leads.insert(at, id);
                        }
                    }
                }
                page = answer.next_page_token;
                if page.is_none() {
                    break;
                }
            }
        }
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

    #[test]
    fn resolves_one_none_or_several() {
        let mut ids = LeadIds::new();
        ids.insert((LeadKeyType::Email, "a@x.com".into()), vec![4]);
        ids.insert((LeadKeyType::Email, "b@x.com".into()), vec![4, 9]);
        let email = |v: &str| LeadKey::email(v).unwrap();
        assert_eq!(resolve(&ids, &email("A@X.com")), Resolved::One(4));
        assert_eq!(resolve(&ids, &email("b@x.com")), Resolved::Several(&[4, 9]));
        assert_eq!(resolve(&ids, &email("c@x.com")), Resolved::None);
        assert_eq!(resolve(&ids, &LeadKey::id(4).unwrap()), Resolved::None);
    }
}
