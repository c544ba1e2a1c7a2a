//! The lead index: every SOAP lead key and REST filter answered from hash
//! maps, so look-ups stay fast with a million leads.
//!
//! A key several leads answer to (two leads sharing an email, an account id
//! shared by a company's contacts) names them all for `leads.json`, in id
//! order. Over SOAP, where one key names one lead, the sandbox runs the
//! campaign for the lowest id of them, which is also the first lead
//! `leads.json` lists: both APIs of the sandbox see the same leads in the
//! same order. (Marketo does not document which lead its SOAP API picks.)
//! `RestClient` does not pick: it runs none of them and reports the key as
//! ambiguous.
//!
//! A lead's `COOKIE` field may hold several cookies separated by commas, as
//! Marketo's `cookies` field does: a `COOKIE` key, or a `filterType=cookies`
//! value, finds the lead by any one of them (or by the whole field).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::data::SandboxLead;
use marketo_campaign::LeadKeyType;

/// Lead ids by key. Ids live in `by_id`; every other key type maps its
/// (normalized) value to the lowest id holding it, and values shared by
/// several leads list the others in `more`, so the common case of one lead
/// per value costs one map entry.
#[derive(Debug, Default)]
pub(crate) struct LeadIndex {
    by_id: HashMap<u32, usize>,
    first: HashMap<(LeadKeyType, String), u32>,
    more: HashMap<(LeadKeyType, String), Vec<u32>>,
}

impl LeadIndex {
    pub(crate) fn new(leads: &[SandboxLead]) -> Self {
        let mut index = LeadIndex {
            by_id: HashMap::with_capacity(leads.len()),
            first: HashMap::with_capacity(leads.len()),
            more: HashMap::new(),
        };
        for (position, lead) in leads.iter().enumerate() {
            index.add(position, lead);
        }
        index
    }

    /// Indexes `lead`, at `position` in the lead list. With two leads of
    /// one id, the id names the first; the second's other keys still find
    /// it (that id).
    pub(crate) fn add(&mut self, position: usize, lead: &SandboxLead) {
        self.by_id.entry(lead.id).or_insert(position);
        for (key, id) in keys(lead) {
            self.insert(key, id);
        }
    }

    /// Forgets lead `id` itself (after [`remove`](LeadIndex::remove)): a
    /// deleted lead.
    pub(crate) fn forget(&mut self, id: u32) {
        self.by_id.remove(&id);
    }

    /// Forgets `lead`'s key values (not its id): before its keys change.
    pub(crate) fn remove(&mut self, lead: &SandboxLead) {
        for (key, id) in keys(lead) {
            let more = self.more.get_mut(&key);
            match self.first.get(&key).copied() {
                Some(first) if first == id => {
                    let next = more.and_then(|more| {
                        let lowest = more.iter().copied().min()?;
                        more.retain(|&other| other != lowest);
                        Some(lowest)
                    });
                    match next {
                        Some(lowest) => {
                            self.first.insert(key.clone(), lowest);
                        }
                        None => {
                            self.first.remove(&key);
                        }
                    }
                }
                _ => {
                    if let Some(more) = more {
                        more.retain(|&other| other != id);
                    }
                }
            }
            if self.more.get(&key).is_some_and(Vec::is_empty) {
                self.more.remove(&key);
            }
        }
    }

    /// Adds `id` under `key`, keeping the lowest id in `first`.
    fn insert(&mut self, key: (LeadKeyType, String), id: u32) {
        match self.first.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
            Entry::Occupied(mut slot) => {
                let other = if id < *slot.get() {
                    slot.insert(id)
                } else {
                    id
                };
                let more = self.more.entry(slot.key().clone()).or_default();
                if !more.contains(&other) {
                    more.push(other);
                }
            }
        }
    }

    /// The lead a SOAP key names: the lowest id answering to
    /// `key_type:value` (the first that `leads.json` lists).
    pub(crate) fn find_one(&self, key_type: LeadKeyType, value: &str) -> Option<u32> {
        if key_type == LeadKeyType::Idnum {
            return parse_id(value).filter(|id| self.by_id.contains_key(id));
        }
        self.first
            .get(&(key_type, normalize(key_type, value)))
            .copied()
    }

    /// Every lead answering to `key_type:value`, by id, each once, lowest
    /// first.
    pub(crate) fn find_all(&self, key_type: LeadKeyType, value: &str) -> Vec<u32> {
        if key_type == LeadKeyType::Idnum {
            return self.find_one(key_type, value).into_iter().collect();
        }
        let key = (key_type, normalize(key_type, value));
        let Some(&first) = self.first.get(&key) else {
            return Vec::new();
        };
        let mut ids = vec![first];
        if let Some(more) = self.more.get(&key) {
            ids.extend(more.iter().copied().filter(|&id| id != first));
            ids.sort_unstable();
            ids.dedup();
        }
        ids
    }

    /// Where lead `id` is in the data's lead list.
    pub(crate) fn position(&self, id: u32) -> Option<usize> {
        self.by_id.get(&id).copied()
    }
}

/// Every (key, id) a lead is indexed under, its id aside.
fn keys(lead: &SandboxLead) -> Vec<((LeadKeyType, String), u32)> {
    let mut out = Vec::new();
    for key_type in LeadKeyType::ALL {
        if key_type == LeadKeyType::Idnum {
            continue;
        }
        let Some(value) = field(lead, key_type) else {
            continue;
        };
        for value in values(key_type, value) {
            out.push(((key_type, value), lead.id));
        }
    }
    out
}

/// A lead id as text: digits only, blanks around allowed.
pub(crate) fn parse_id(value: &str) -> Option<u32> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The lead's value for a key type (`None` for [`LeadKeyType::Idnum`]).
pub(crate) fn field(lead: &SandboxLead, key_type: LeadKeyType) -> Option<&str> {
    match key_type {
        LeadKeyType::Idnum => None,
        LeadKeyType::Email => lead.email.as_deref(),
        LeadKeyType::Cookie => lead.cookie.as_deref(),
        LeadKeyType::LeadOwnerEmail => lead.lead_owner_email.as_deref(),
        LeadKeyType::SfdcAccountId => lead.sfdc_account_id.as_deref(),
        LeadKeyType::SfdcContactId => lead.sfdc_contact_id.as_deref(),
        LeadKeyType::SfdcLeadId => lead.sfdc_lead_id.as_deref(),
        LeadKeyType::SfdcLeadOwnerId => lead.sfdc_lead_owner_id.as_deref(),
        LeadKeyType::SfdcOpptyId => lead.sfdc_oppty_id.as_deref(),
    }
}

/// The key type of a REST field name (exact spelling): the one table on
/// [`LeadKeyType::from_rest_field`].
pub(crate) fn from_rest_name(name: &str) -> Option<LeadKeyType> {
    LeadKeyType::from_rest_field(name)
}

/// The `filterType`s Marketo documents for `GET /rest/v1/leads.json`
/// (besides custom fields, which the sandbox has none of).
pub(crate) use marketo_campaign::rest::DOCUMENTED_FILTER_TYPES as FILTER_TYPES;

/// What a `filterType` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    /// A field a SOAP key type names too.
    Key(LeadKeyType),
    /// A documented field the sandbox's leads have no value for: it
    /// matches no lead.
    Empty,
}

/// The filter of a documented `filterType` (exact spelling); `None` for
/// any other name, `leadOwnerEmail` included: Marketo does not document it.
pub(crate) fn filter_type(name: &str) -> Option<Filter> {
    if !FILTER_TYPES.contains(&name) {
        return None;
    }
    Some(from_rest_name(name).map_or(Filter::Empty, Filter::Key))
}

/// The values a lead's field answers to, normalized: the field itself, and
/// for cookies also each of its comma-separated cookies.
fn values(key_type: LeadKeyType, field: &str) -> Vec<String> {
    let mut values = vec![normalize(key_type, field)];
    if key_type == LeadKeyType::Cookie {
        for cookie in cookies(field) {
            let cookie = normalize(key_type, cookie);
            if !values.contains(&cookie) {
                values.push(cookie);
            }
        }
    }
    values
}

/// The cookies of a `cookies` field: comma-separated, blanks around each
/// ignored, empty ones skipped.
pub(crate) fn cookies(field: &str) -> impl Iterator<Item = &str> {
    field.split(',').map(str::trim).filter(|c| !c.is_empty())
}

/// Emails compare without ASCII case and surrounding blanks; other values
/// exactly.
fn normalize(key_type: LeadKeyType, value: &str) -> String {
    match key_type {
        LeadKeyType::Email | LeadKeyType::LeadOwnerEmail => value.trim().to_ascii_lowercase(),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(id: u32, email: &str, owner: &str) -> SandboxLead {
        SandboxLead {
            id,
            email: Some(email.into()),
            lead_owner_email: Some(owner.into()),
            ..SandboxLead::default()
        }
    }

    #[test]
    fn shared_values_list_every_lead_and_name_the_lowest_id() {
        let leads = [
            lead(9, "a@x.com", "o@x.com"),
            lead(3, "B@x.com", "O@X.com"),
            lead(5, "c@x.com", "p@x.com"),
            lead(9, "dup@x.com", "o@x.com"),
        ];
        let index = LeadIndex::new(&leads);
        assert_eq!(
            index.find_all(LeadKeyType::LeadOwnerEmail, "o@x.COM"),
            [3, 9]
        );
        // SOAP names the lowest id, not the first in data order (9).
        assert_eq!(
            index.find_one(LeadKeyType::LeadOwnerEmail, "o@x.com"),
            Some(3)
        );
        assert_eq!(index.find_all(LeadKeyType::Email, " b@X.com "), [3]);
        assert_eq!(index.find_all(LeadKeyType::Email, "dup@x.com"), [9]);
        assert_eq!(index.find_one(LeadKeyType::Idnum, " 5 "), Some(5));
        assert_eq!(index.find_one(LeadKeyType::Idnum, "+5"), None);
        assert_eq!(index.find_one(LeadKeyType::Idnum, "99999999999"), None);
        assert_eq!(index.position(9), Some(0));
        assert!(index.find_all(LeadKeyType::Cookie, "x").is_empty());
    }

    #[test]
    fn cookies_match_by_value_or_whole() {
        let leads = [
            SandboxLead {
                id: 8,
                cookie: Some("c1, c2,,c3".into()),
                ..SandboxLead::default()
            },
            SandboxLead {
                id: 4,
                cookie: Some("c3".into()),
                ..SandboxLead::default()
            },
        ];
        let index = LeadIndex::new(&leads);
        assert_eq!(index.find_all(LeadKeyType::Cookie, "c1"), [8]);
        assert_eq!(index.find_all(LeadKeyType::Cookie, "c2"), [8]);
        assert_eq!(index.find_all(LeadKeyType::Cookie, "c1, c2,,c3"), [8]);
        assert_eq!(index.find_all(LeadKeyType::Cookie, "c3"), [4, 8]);
        assert_eq!(index.find_one(LeadKeyType::Cookie, "c3"), Some(4));
        assert!(index.find_all(LeadKeyType::Cookie, "").is_empty());
        assert!(index.find_all(LeadKeyType::Cookie, "c1, c2").is_empty());
    }

    #[test]
    fn only_documented_filter_types() {
        assert_eq!(filter_type("id"), Some(Filter::Key(LeadKeyType::Idnum)));
        assert_eq!(
            filter_type("cookies"),
            Some(Filter::Key(LeadKeyType::Cookie))
        );
        assert_eq!(filter_type("twitterId"), Some(Filter::Empty));
        assert_eq!(filter_type("leadOwnerEmail"), None);
        assert_eq!(filter_type("Email"), None);
        assert_eq!(filter_type("firstName"), None);
    }

    #[test]
    fn rest_names_round_trip() {
        for key_type in LeadKeyType::ALL {
            assert_eq!(from_rest_name(key_type.rest_field()), Some(key_type));
        }
        assert_eq!(from_rest_name("Email"), None);
    }
}
