//! The lead look-up as it was before it was made fast (planning, URLs,
//! reading answers as `serde_json::Value`, SipHash maps of `String`s),
//! kept verbatim in substance as the baseline `benches/wire.rs` measures
//! against (feature `bench-baseline`) and as the reference the unit tests
//! compare today's look-up with, answer for answer. Nothing else uses it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::error::Error;
use crate::request::{LeadKey, LeadKeyType};
use crate::rest::lookup::{filter_type, MAX_FILTER_VALUES, MAX_URL_BYTES};
use crate::rest::wire;

fn encode(s: &str) -> String {
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

fn normalize(key_type: LeadKeyType, value: &str) -> String {
    match key_type {
        LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => value.trim().to_ascii_lowercase(),
        _ => value.to_owned(),
    }
}

fn cookies(field: &str) -> impl Iterator<Item = &str> {
    field.split(',').map(str::trim).filter(|c| !c.is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadQuery {
    pub(crate) key_type: LeadKeyType,
    pub(crate) values: Vec<String>,
}

impl LeadQuery {
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

pub(crate) type LeadIds = HashMap<(LeadKeyType, String), Vec<u32>>;

/// What a key resolved to: its leads (none, one, several), lowest first.
pub(crate) fn resolve<'a>(ids: &'a LeadIds, key: &LeadKey) -> &'a [u32] {
    ids.get(&(key.key_type(), normalize(key.key_type(), key.value())))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The body of the old `lookup_leads` loop, for one page of answer.
pub(crate) fn absorb(ids: &mut LeadIds, query: &LeadQuery, records: &[serde_json::Value]) {
    let key_type = query.key_type;
    let asked: HashSet<String> = query
        .values
        .iter()
        .map(|v| normalize(key_type, v))
        .collect();
    let filter = filter_type(key_type).unwrap_or("id");
    for record in records {
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
}

/// Plans the look-ups of `leads`, reads `answers[i]` as the (one-page)
/// answer to look-up `i`, and resolves every key: returns the look-up
/// paths and hands `each` every key's leads, in order.
pub(crate) fn look_up(
    base_len: usize,
    leads: &[LeadKey],
    answers: &[&[u8]],
    each: &mut dyn FnMut(&[u32]),
) -> Result<Vec<String>, Error> {
    let (queries, _) = plan_lead_queries(base_len, leads);
    let mut ids = LeadIds::new();
    let mut paths = Vec::with_capacity(queries.len());
    for (query, answer) in queries.iter().zip(answers) {
        paths.push(query.path(None));
        let page = wire::read::<serde_json::Value>(200, answer)?;
        absorb(&mut ids, query, &page.result);
    }
    for key in leads {
        each(resolve(&ids, key));
    }
    Ok(paths)
}
