//! The lead index: every SOAP lead key and REST filter answered from hash
//! maps, so look-ups stay fast with a million leads.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::request::LeadKeyType;
use crate::sandbox::data::SandboxLead;

/// Lead ids by key. Ids live in `by_id`; every other key type maps its
/// (normalized) value to the first lead holding it, and values shared by
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
            // With two leads of one id, the id names the first; the
            // second's other keys still find it (that id).
            index.by_id.entry(lead.id).or_insert(position);
            for key_type in LeadKeyType::ALL {
                if key_type == LeadKeyType::Idnum {
                    continue;
                }
                let Some(value) = field(lead, key_type) else {
                    continue;
                };
                match index.first.entry((key_type, normalize(key_type, value))) {
                    Entry::Vacant(slot) => {
                        slot.insert(lead.id);
                    }
                    Entry::Occupied(slot) => index
                        .more
                        .entry(slot.key().clone())
                        .or_default()
                        .push(lead.id),
                }
            }
        }
        index
    }

    /// The first lead (in data order) answering to `key_type:value`.
    pub(crate) fn find_first(&self, key_type: LeadKeyType, value: &str) -> Option<u32> {
        if key_type == LeadKeyType::Idnum {
            return parse_id(value).filter(|id| self.by_id.contains_key(id));
        }
        self.first
            .get(&(key_type, normalize(key_type, value)))
            .copied()
    }

    /// Every lead answering to `key_type:value`, by id, each once.
    pub(crate) fn find_all(&self, key_type: LeadKeyType, value: &str) -> Vec<u32> {
        if key_type == LeadKeyType::Idnum {
            return self.find_first(key_type, value).into_iter().collect();
        }
        let key = (key_type, normalize(key_type, value));
        let Some(&first) = self.first.get(&key) else {
            return Vec::new();
        };
        let mut ids = vec![first];
        if let Some(more) = self.more.get(&key) {
            ids.extend_from_slice(more);
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

/// The REST field name of a key type, e.g. `sfdcLeadId`.
pub(crate) fn rest_name(key_type: LeadKeyType) -> &'static str {
    match key_type {
        LeadKeyType::Idnum => "id",
        LeadKeyType::Email => "email",
        LeadKeyType::Cookie => "cookies",
        LeadKeyType::LeadOwnerEmail => "leadOwnerEmail",
        LeadKeyType::SfdcAccountId => "sfdcAccountId",
        LeadKeyType::SfdcContactId => "sfdcContactId",
        LeadKeyType::SfdcLeadId => "sfdcLeadId",
        LeadKeyType::SfdcLeadOwnerId => "sfdcLeadOwnerId",
        LeadKeyType::SfdcOpptyId => "sfdcOpptyId",
    }
}

/// The key type of a REST field name (exact spelling).
pub(crate) fn from_rest_name(name: &str) -> Option<LeadKeyType> {
    LeadKeyType::ALL
        .into_iter()
        .find(|&key_type| rest_name(key_type) == name)
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
    fn shared_values_list_every_lead_in_data_order() {
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
        assert_eq!(
            index.find_first(LeadKeyType::LeadOwnerEmail, "o@x.com"),
            Some(9)
        );
        assert_eq!(index.find_all(LeadKeyType::Email, " b@X.com "), [3]);
        assert_eq!(index.find_all(LeadKeyType::Email, "dup@x.com"), [9]);
        assert_eq!(index.find_first(LeadKeyType::Idnum, " 5 "), Some(5));
        assert_eq!(index.find_first(LeadKeyType::Idnum, "+5"), None);
        assert_eq!(index.find_first(LeadKeyType::Idnum, "99999999999"), None);
        assert_eq!(index.position(9), Some(0));
        assert!(index.find_all(LeadKeyType::Cookie, "x").is_empty());
    }

    #[test]
    fn rest_names_round_trip() {
        for key_type in LeadKeyType::ALL {
            assert_eq!(from_rest_name(rest_name(key_type)), Some(key_type));
        }
        assert_eq!(from_rest_name("Email"), None);
    }
}
