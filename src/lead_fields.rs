//! The one table of how each SOAP lead key type is named over REST: its
//! lead field, and the `filterType` of `GET /rest/v1/leads.json` that looks
//! it up. The REST client and the sandbox both read it.

use crate::request::LeadKeyType;

/// Key type, REST lead field, documented `filterType` (none for
/// `LEADOWNEREMAIL`: Marketo documents no `leadOwnerEmail` filter type).
const TABLE: [(LeadKeyType, &str, Option<&str>); 9] = [
    (LeadKeyType::Idnum, "id", Some("id")),
    (LeadKeyType::Cookie, "cookies", Some("cookies")),
    (LeadKeyType::Email, "email", Some("email")),
    (LeadKeyType::LeadOwnerEmail, "leadOwnerEmail", None),
    (
        LeadKeyType::SfdcAccountId,
        "sfdcAccountId",
        Some("sfdcAccountId"),
    ),
    (
        LeadKeyType::SfdcContactId,
        "sfdcContactId",
        Some("sfdcContactId"),
    ),
    (LeadKeyType::SfdcLeadId, "sfdcLeadId", Some("sfdcLeadId")),
    (
        LeadKeyType::SfdcLeadOwnerId,
        "sfdcLeadOwnerId",
        Some("sfdcLeadOwnerId"),
    ),
    (LeadKeyType::SfdcOpptyId, "sfdcOpptyId", Some("sfdcOpptyId")),
];

/// The `filterType`s Marketo documents for `GET /rest/v1/leads.json`
/// (swagger-mapi.json; custom fields aside): the look-ups a REST lead
/// query may name.
///
/// ```
/// assert!(marketo_campaign::rest::DOCUMENTED_FILTER_TYPES.contains(&"email"));
/// ```
pub const DOCUMENTED_FILTER_TYPES: [&str; 12] = [
    "cookies",
    "email",
    "facebookId",
    "id",
    "leadPartitionId",
    "linkedInId",
    "sfdcAccountId",
    "sfdcContactId",
    "sfdcLeadId",
    "sfdcLeadOwnerId",
    "sfdcOpptyId",
    "twitterId",
];

impl LeadKeyType {
    fn row(self) -> &'static (LeadKeyType, &'static str, Option<&'static str>) {
        // The table lists every type once, in any order.
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The REST lead field that holds this key, e.g. `sfdcLeadId`.
    ///
    /// ```
    /// use marketo_campaign::LeadKeyType;
    /// assert_eq!(LeadKeyType::SfdcLeadId.rest_field(), "sfdcLeadId");
    /// assert_eq!(LeadKeyType::from_rest_field("cookies"), Some(LeadKeyType::Cookie));
    /// ```
    pub fn rest_field(self) -> &'static str {
        self.row().1
    }

    /// The `filterType` of `GET /rest/v1/leads.json` that looks this key up,
    /// among those Marketo documents; `None` for `LEADOWNEREMAIL`, which
    /// REST cannot look up (such a key is refused unsent over REST, so
    /// [`Fallback`](crate::Fallback) keeps it on SOAP).
    ///
    /// ```
    /// use marketo_campaign::LeadKeyType;
    /// assert_eq!(LeadKeyType::Idnum.rest_filter_type(), Some("id"));
    /// assert_eq!(LeadKeyType::LeadOwnerEmail.rest_filter_type(), None);
    /// ```
    pub fn rest_filter_type(self) -> Option<&'static str> {
        self.row().2
    }

    /// The key type whose REST lead field is `name` (exact spelling).
    pub fn from_rest_field(name: &str) -> Option<LeadKeyType> {
        TABLE.iter().find(|row| row.1 == name).map(|row| row.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_documented_filter_types_are_used() {
        for key_type in LeadKeyType::ALL {
            if let Some(filter) = key_type.rest_filter_type() {
                assert!(DOCUMENTED_FILTER_TYPES.contains(&filter), "{filter}");
            }
        }
    }

    #[test]
    fn every_key_type_has_one_row() {
        for key_type in LeadKeyType::ALL {
            let rows = TABLE.iter().filter(|row| row.0 == key_type).count();
            assert_eq!(rows, 1, "{key_type}");
            assert_eq!(
                LeadKeyType::from_rest_field(key_type.rest_field()),
                Some(key_type)
            );
        }
    }
}
