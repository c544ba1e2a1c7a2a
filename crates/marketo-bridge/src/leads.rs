//! SOAP's lead operations served over REST: `syncLead`, `getLead`,
//! `syncMultipleLeads`, `getMultipleLeads`, `describeMObject`,
//! `listOperation`, `getLeadActivity`.
//!
//! SOAP speaks `attrName`s (`FirstName`, `Foo__c`), REST its own names:
//! [`Fields`] translates through the lead describe (`describe.json` gives
//! both names and the data type), cached and asked again once when a name
//! is missing. An unknown name is fault 20105 naming it, and nothing is
//! written.
//!
//! A write whose answer was lost (cut, timed out, a gateway's 5xx) is
//! *unknown*: the fault says it may have been applied and to read the lead
//! (`getLead`) before sending it again; the bridge never repeats it.

use std::collections::BTreeMap;

use chrono::DateTime;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use marketo_campaign::rest::{
    Lead, LeadField, LeadSync, ListMemberStatus, SyncAction, MAX_ACTIVITY_TYPES, MAX_FILTER_VALUES,
    MAX_LIST_LEADS, MAX_SYNC_RECORDS,
};
use marketo_campaign::soap::{
    escape_text, ActivityQuery, DescribeMObject, Fault, GetLead, GetLeadActivity, GetLeadChanges,
    GetMultipleLeads, LeadSelector, ListOperation, ListOperationType, MergeLeads,
    ReceivedAttribute, ReceivedLeadRecord, SyncLead, SyncMultipleLeads,
};
use marketo_campaign::{Delivery, Error, LeadKeyType, RestClient, SoapCode};
use serde_json::Value;

/// The envelope's opening, with the namespaces SOAP answers use.
const HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><SOAP-ENV:Body>"#
);
const TAIL: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>";

/// The longest `fields=` list one `leads.json` GET carries (Marketo's URLs
/// stay under 8 KiB; the rest of the path is short).
const MAX_FIELDS_BYTES: usize = 6000;

/// The lead describe, by SOAP name, cached for every caller.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    table: Mutex<Option<Arc<Vec<LeadField>>>>,
}

impl Fields {
    /// The describe, asked of REST when not cached or when `fresh`.
    fn table(&self, rest: &RestClient, fresh: bool) -> Result<Arc<Vec<LeadField>>, Error> {
        let mut cached = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(table), false) = (cached.as_ref(), fresh) {
            return Ok(Arc::clone(table));
        }
        let table = Arc::new(rest.describe_leads()?);
        *cached = Some(Arc::clone(&table));
        Ok(table)
    }

    /// The fields named `soap_names`, in order; the describe is asked again
    /// once if a name is missing. `Err(name)` for a name still unknown.
    fn resolve(
        &self,
        rest: &RestClient,
        soap_names: &[&str],
    ) -> Result<Result<Vec<LeadField>, String>, Error> {
        let mut table = self.table(rest, false)?;
        for fresh in [false, true] {
            if fresh {
                table = self.table(rest, true)?;
            }
            let found: Vec<Option<&LeadField>> =
                soap_names.iter().map(|n| by_soap(&table, n)).collect();
            if let Some(missing) = found.iter().position(Option::is_none) {
                if fresh {
                    return Ok(Err(soap_names[missing].to_owned()));
                }
                continue;
            }
            return Ok(Ok(found.into_iter().flatten().cloned().collect()));
        }
        Ok(Ok(Vec::new()))
    }
}

/// The field whose SOAP name is `name`: exactly, else ignoring ASCII case.
fn by_soap<'t>(table: &'t [LeadField], name: &str) -> Option<&'t LeadField> {
    table
        .iter()
        .find(|f| f.soap_name.as_deref() == Some(name))
        .or_else(|| {
            table.iter().find(|f| {
                f.soap_name
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(name))
            })
        })
}

fn unknown_field(name: &str) -> Fault {
    Fault::new(
        SoapCode::UnknownField,
        format!("Field '{name}' not found; nothing was written"),
    )
}

fn bad(reason: impl Into<String>) -> Fault {
    Fault::new(
        SoapCode::BadParameter,
        format!("Bad parameter: {}", reason.into()),
    )
}

/// The fault for a failed REST call of a write: an unknown one may have
/// been applied.
fn write_failed(what: &str, err: &Error) -> Fault {
    if err.delivery() == Delivery::Unknown {
        return Fault::new(
            SoapCode::InternalError,
            format!(
                "{what} may have been applied: the answer was lost ({err}); read the lead (getLead) before sending it again"
            ),
        );
    }
    crate::faults::fault_for(err)
}

/// A SOAP value for a REST field of `data_type`: a JSON number for
/// integers, a boolean for booleans, else the text.
fn typed(field: &LeadField, soap_name: &str, value: &str) -> Result<Value, Fault> {
    match field.data_type.as_str() {
        "integer" => value
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad(format!("{soap_name} takes an integer"))),
        "boolean" => match value.trim() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad(format!("{soap_name} takes true or false"))),
        },
        _ => Ok(Value::String(value.to_owned())),
    }
}

/// `syncLead`: the record's key by SOAP's precedence (`Id`, then
/// `ForeignSysPersonId`, then `Email`), its attributes translated, one
/// `POST leads.json` (`updateOnly` by id, `createOrUpdate` by email), then
/// the cookie associated and the lead read back when asked.
pub(crate) fn sync_lead(
    rest: &RestClient,
    fields: &Fields,
    call: &SyncLead<'_>,
) -> Result<String, Fault> {
    let record = call.record();
    let mut lead = translate(rest, fields, record)?;
    let (action, lookup) = lookup_for(record, &mut lead, true)?;
    let done = rest
        .sync_leads(action, lookup, std::slice::from_ref(&lead))
        .map_err(|e| write_failed("the sync", &e))?;
    let (id, status, error) = match done.first() {
        Some(LeadSync::Created(id)) => (*id, "CREATED", None),
        Some(LeadSync::Updated(id)) => (*id, "UPDATED", None),
        Some(LeadSync::Skipped { code, .. }) if code == "1004" => {
            return Err(Fault::new(
                SoapCode::LeadNotFound,
                format!(
                    "Lead not found: Id {}; nothing was written",
                    record.id().unwrap_or_default()
                ),
            ))
        }
        Some(LeadSync::Skipped { code, message }) => (
            record.id().unwrap_or_default(),
            "FAILED",
            Some(format!("{message} ({code})")),
        ),
        Some(_) | None => return Err(bad("the sync answered nothing for the record")),
    };
    if let (Some(cookie), None) = (call.marketo_cookie(), &error) {
        rest.associate_cookie(id, cookie).map_err(|e| {
            let synced =
                format!("the lead was synced (id {id}, {status}), but associating marketoCookie");
            write_failed(&synced, &e)
        })?;
    }
    let returned = match (call.return_lead(), &error) {
        (true, None) => Some(read_lead(rest, fields, "id", &id.to_string())?),
        _ => None,
    };
    let mut out = String::with_capacity(512);
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:successSyncLead><result><leadId>{id}</leadId><syncStatus><leadId>{id}</leadId><status>{status}</status>"
    );
    if let Some(error) = error {
        let _ = write!(out, "<error>{}</error>", escape_text(&error));
    }
    out.push_str("</syncStatus>");
    if let Some(leads) = returned {
        if let Some((lead, table)) = leads.0.first().map(|l| (l, &leads.1)) {
            write_lead_record(&mut out, lead, table);
        }
    }
    out.push_str("</result></ns1:successSyncLead>");
    out.push_str(TAIL);
    Ok(out)
}

/// A lead record's attributes and email as a REST record (SOAP names
/// translated through the describe, values typed); an unknown name is
/// 20105, a bad value 20110, both before anything is written.
fn translate(
    rest: &RestClient,
    fields: &Fields,
    record: &ReceivedLeadRecord<'_>,
) -> Result<Lead, Fault> {
    let names: Vec<&str> = record.attributes().iter().map(|a| a.name()).collect();
    let resolved = fields
        .resolve(rest, &names)
        .map_err(|e| crate::faults::fault_for(&e))?
        .map_err(|name| unknown_field(&name))?;
    let mut lead = Lead::new();
    for (attribute, field) in record.attributes().iter().zip(&resolved) {
        let Some(rest_name) = field.rest_name.as_deref() else {
            return Err(unknown_field(attribute.name()));
        };
        if field.read_only {
            return Err(bad(format!("{} is read-only", attribute.name())));
        }
        lead.insert(
            rest_name.to_owned(),
            typed(field, attribute.name(), attribute.value())?,
        );
    }
    if let Some(email) = record.email() {
        lead.insert("email".into(), Value::String(email.to_owned()));
    }
    Ok(lead)
}

/// The REST action and lookup field by SOAP's key precedence: `Id`
/// (update that lead), `ForeignSysPersonId` (no REST lookup: 20110),
/// `Email` (update or create; create a duplicate without `dedup`).
fn lookup_for(
    record: &ReceivedLeadRecord<'_>,
    lead: &mut Lead,
    dedup: bool,
) -> Result<(SyncAction, &'static str), Fault> {
    match (record.id(), record.foreign_sys_person_id(), record.email()) {
        (Some(id), _, _) => {
            lead.insert("id".into(), Value::from(id));
            Ok((SyncAction::UpdateOnly, "id"))
        }
        (None, Some(_), _) => Err(bad(
            "ForeignSysPersonId: Marketo's REST API has no lookup for it; give the lead's Id or Email",
        )),
        (None, None, Some(_)) if dedup => Ok((SyncAction::CreateOrUpdate, "email")),
        (None, None, Some(_)) => Ok((SyncAction::CreateDuplicate, "email")),
        (None, None, None) => Err(Fault::new(
            SoapCode::LeadKeyRequired,
            "Lead key required: leadRecord needs Id, ForeignSysPersonId or Email",
        )),
    }
}

/// `syncMultipleLeads`: every record translated first (an unknown field
/// anywhere is 20105 and nothing is written); records without a usable key
/// are FAILED unsent; the others go to REST grouped by lookup, in parts of
/// 300; one `syncStatus` per record, in order. A part that fails after
/// others were applied is a fault naming the records applied.
pub(crate) fn sync_multiple_leads(
    rest: &RestClient,
    fields: &Fields,
    call: &SyncMultipleLeads<'_>,
) -> Result<String, Fault> {
    let records = call.records();
    if records.is_empty() {
        return Err(Fault::new(
            SoapCode::ParameterRequired,
            "Parameter required: leadRecordList holds no leadRecord",
        ));
    }
    let mut statuses: Vec<Option<(u32, &'static str, Option<String>)>> = vec![None; records.len()];
    let mut groups: BTreeMap<(&'static str, &'static str), Vec<(usize, Lead)>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let mut lead = translate(rest, fields, record)?;
        match lookup_for(record, &mut lead, call.dedup_enabled()) {
            Ok((action, lookup)) => groups
                .entry((action.as_str(), lookup))
                .or_default()
                .push((i, lead)),
            Err(fault) => {
                statuses[i] = Some((
                    record.id().unwrap_or_default(),
                    "FAILED",
                    Some(fault.message().to_owned()),
                ));
            }
        }
    }
    let mut applied: Vec<usize> = Vec::new();
    for ((action, lookup), members) in &groups {
        let action = match *action {
            "updateOnly" => SyncAction::UpdateOnly,
            "createDuplicate" => SyncAction::CreateDuplicate,
            _ => SyncAction::CreateOrUpdate,
        };
        for part in members.chunks(MAX_SYNC_RECORDS) {
            let leads: Vec<Lead> = part.iter().map(|(_, lead)| lead.clone()).collect();
            let done = rest.sync_leads(action, lookup, &leads).map_err(|e| {
                if applied.is_empty() {
                    write_failed("the sync", &e)
                } else {
                    let numbers: Vec<String> =
                        applied.iter().map(|i| (i + 1).to_string()).collect();
                    write_failed(
                        &format!(
                            "records {} were synced, then a part of {} records failed, which",
                            numbers.join(", "),
                            part.len()
                        ),
                        &e,
                    )
                }
            })?;
            for ((i, _), outcome) in part.iter().zip(done) {
                applied.push(*i);
                statuses[*i] = Some(match outcome {
                    LeadSync::Created(id) => (id, "CREATED", None),
                    LeadSync::Updated(id) => (id, "UPDATED", None),
                    LeadSync::Skipped { code, message } => (
                        records[*i].id().unwrap_or_default(),
                        "FAILED",
                        Some(format!("{message} ({code})")),
                    ),
                    _ => (0, "FAILED", Some("no status".to_owned())),
                });
            }
        }
    }
    let mut out = String::with_capacity(256 + 128 * records.len());
    out.push_str(HEAD);
    out.push_str("<ns1:successSyncMultipleLeads><result><syncStatusList>");
    for status in statuses {
        let (id, status, error) = status.unwrap_or((0, "FAILED", Some("not synced".to_owned())));
        let _ = write!(
            out,
            "<syncStatus><leadId>{id}</leadId><status>{status}</status>"
        );
        if let Some(error) = error {
            let _ = write!(out, "<error>{}</error>", escape_text(&error));
        }
        out.push_str("</syncStatus>");
    }
    out.push_str("</syncStatusList></result></ns1:successSyncMultipleLeads>");
    out.push_str(TAIL);
    Ok(out)
}

/// The leads `filter_type:value` finds, with every field that has a SOAP
/// name (asked explicitly, in as many GETs as the URL limit needs), and
/// the describe they were read with.
fn read_lead(
    rest: &RestClient,
    fields: &Fields,
    filter_type: &str,
    value: &str,
) -> Result<(Vec<Lead>, Arc<Vec<LeadField>>), Fault> {
    let table = fields
        .table(rest, false)
        .map_err(|e| crate::faults::fault_for(&e))?;
    let names: Vec<&str> = table
        .iter()
        .filter(|f| f.soap_name.is_some())
        .filter_map(|f| f.rest_name.as_deref())
        .collect();
    let groups = field_groups(&names);
    let mut by_id: BTreeMap<u64, Lead> = BTreeMap::new();
    for group in &groups {
        let leads = rest
            .get_leads(filter_type, &[value], group)
            .map_err(|e| crate::faults::fault_for(&e))?;
        for lead in leads {
            let Some(id) = lead.get("id").and_then(Value::as_u64) else {
                continue;
            };
            by_id.entry(id).or_default().extend(lead);
        }
    }
    Ok((by_id.into_values().collect(), table))
}

/// A REST value as SOAP text.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A `leadRecord`: `Id`, `Email`, and every other field with a SOAP name
/// and a value as an `attribute` (`attrName`, `attrType`, `attrValue`).
fn write_lead_record(out: &mut String, lead: &Lead, table: &[LeadField]) {
    out.push_str("<leadRecord>");
    if let Some(id) = lead.get("id") {
        let _ = write!(out, "<Id>{}</Id>", escape_text(&text(id)));
    }
    if let Some(email) = lead.get("email").map(text).filter(|e| !e.is_empty()) {
        let _ = write!(out, "<Email>{}</Email>", escape_text(&email));
    }
    out.push_str("<leadAttributeList>");
    for field in table {
        let (Some(soap), Some(rest_name)) =
            (field.soap_name.as_deref(), field.rest_name.as_deref())
        else {
            continue;
        };
        if rest_name == "id" || rest_name == "email" {
            continue;
        }
        let Some(value) = lead.get(rest_name).map(text).filter(|v| !v.is_empty()) else {
            continue;
        };
        let _ = write!(
            out,
            "<attribute><attrName>{}</attrName><attrType>{}</attrType><attrValue>{}</attrValue></attribute>",
            escape_text(soap),
            escape_text(&field.data_type),
            escape_text(&value)
        );
    }
    out.push_str("</leadAttributeList></leadRecord>");
}

/// `getLead`: the leads one key finds (every match, `count`), with every
/// field that has a SOAP name; none is fault 20103.
pub(crate) fn get_lead(
    rest: &RestClient,
    fields: &Fields,
    call: &GetLead<'_>,
) -> Result<String, Fault> {
    let key = call.key();
    let Some(filter_type) = key.key_type().rest_filter_type() else {
        return Err(bad(format!(
            "keyType {}: Marketo's REST API cannot look leads up by it",
            key.key_type().as_str()
        )));
    };
    let value = key.value().trim();
    if value.is_empty() || value.contains(',') {
        return Err(Fault::new(
            SoapCode::LeadKeyBad,
            "Bad lead key: the keyValue is empty or holds a comma",
        ));
    }
    if key.key_type() == LeadKeyType::Idnum && value.parse::<u32>().is_err() {
        return Err(Fault::new(
            SoapCode::LeadKeyBad,
            "Bad lead key: an IDNUM keyValue is a lead id",
        ));
    }
    let (leads, table) = read_lead(rest, fields, filter_type, value)?;
    if leads.is_empty() {
        return Err(Fault::new(
            SoapCode::LeadNotFound,
            format!("Lead not found: {}:{value}", key.key_type().as_str()),
        ));
    }
    let mut out = String::with_capacity(512 + 256 * leads.len());
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:successGetLead><result><count>{}</count><leadRecordList>",
        leads.len()
    );
    for lead in &leads {
        write_lead_record(&mut out, lead, &table);
    }
    out.push_str("</leadRecordList></result></ns1:successGetLead>");
    out.push_str(TAIL);
    Ok(out)
}

/// `describeMObject` for `LeadRecord`: every field with a SOAP name, from
/// the REST describe.
pub(crate) fn describe(
    rest: &RestClient,
    fields: &Fields,
    call: &DescribeMObject<'_>,
) -> Result<String, Fault> {
    if call.object_name() != "LeadRecord" {
        return Err(bad(format!(
            "objectName {:?}: the bridge describes LeadRecord only",
            call.object_name()
        )));
    }
    let table = fields
        .table(rest, false)
        .map_err(|e| crate::faults::fault_for(&e))?;
    const UPDATED_AT: &str = "2024-01-01T00:00:00Z";
    let mut out = String::with_capacity(4096);
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:successDescribeMObject><result><metadata><name>LeadRecord</name><description xsi:nil=\"true\"/><isCustom>false</isCustom><isVirtual>false</isVirtual><fieldList>"
    );
    for field in table.iter() {
        let Some(soap) = field.soap_name.as_deref() else {
            continue;
        };
        let size = field.length.map_or_else(
            || "<size xsi:nil=\"true\"/>".to_owned(),
            |l| format!("<size>{l}</size>"),
        );
        let _ = write!(
            out,
            "<field><name>{}</name><description xsi:nil=\"true\"/><displayName>{}</displayName><sourceObject>Lead</sourceObject><dataType>{}</dataType>{size}<isReadonly>{}</isReadonly><isUpdateBlocked>false</isUpdateBlocked><isName xsi:nil=\"true\"/><isPrimaryKey>{}</isPrimaryKey><isCustom>false</isCustom><isDynamic>false</isDynamic><dynamicFieldRef xsi:nil=\"true\"/><updatedAt>{UPDATED_AT}</updatedAt></field>",
            escape_text(soap),
            escape_text(&field.display_name),
            escape_text(&field.data_type),
            field.read_only,
            soap == "Id",
        );
    }
    let _ = write!(
        out,
        "</fieldList><updatedAt>{UPDATED_AT}</updatedAt></metadata></result></ns1:successDescribeMObject>"
    );
    out.push_str(TAIL);
    Ok(out)
}

/// The lead ids each key names: the ids of the leads whose field holds the
/// key's value (emails without regard to case, cookies by any one of the
/// lead's cookies), looked up by key type in calls of up to 300 values.
fn resolve_keys(rest: &RestClient, keys: &[(LeadKeyType, &str)]) -> Result<Vec<Vec<u32>>, Fault> {
    let mut found: Vec<Vec<u32>> = vec![Vec::new(); keys.len()];
    for key_type in LeadKeyType::ALL {
        let positions: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].0 == key_type).collect();
        if positions.is_empty() {
            continue;
        }
        let Some(filter_type) = key_type.rest_filter_type() else {
            return Err(bad(format!(
                "keyType {}: Marketo's REST API cannot look leads up by it",
                key_type.as_str()
            )));
        };
        let field = key_type.rest_field();
        for chunk in positions.chunks(MAX_FILTER_VALUES) {
            let values: Vec<&str> = chunk.iter().map(|&i| keys[i].1.trim()).collect();
            if values.iter().any(|v| v.is_empty() || v.contains(',')) {
                return Err(Fault::new(
                    SoapCode::LeadKeyBad,
                    "Bad lead key: a keyValue is empty or holds a comma",
                ));
            }
            let leads = rest
                .get_leads(filter_type, &values, &[field])
                .map_err(|e| crate::faults::fault_for(&e))?;
            for &i in chunk {
                let wanted = keys[i].1.trim();
                found[i] = leads
                    .iter()
                    .filter(|lead| {
                        let have = if key_type == LeadKeyType::Idnum {
                            lead.get("id").map(text)
                        } else {
                            lead.get(field).map(text)
                        };
                        have.is_some_and(|have| match key_type {
                            LeadKeyType::Email => have.eq_ignore_ascii_case(wanted),
                            LeadKeyType::Cookie => {
                                have == wanted || have.split(',').any(|c| c.trim() == wanted)
                            }
                            _ => have == wanted,
                        })
                    })
                    .filter_map(|lead| lead.get("id").and_then(Value::as_u64))
                    .filter_map(|id| u32::try_from(id).ok())
                    .collect();
            }
        }
    }
    Ok(found)
}

/// The id of the one static list named `name`: none is 20111, several
/// 20110 (nothing is done either way).
fn list_named(rest: &RestClient, name: &str) -> Result<u32, Fault> {
    let name = name.trim();
    let lists = rest.lists_by_name(name).map_err(|e| match e {
        Error::InvalidInput { .. } => bad(e.to_string()),
        other => crate::faults::fault_for(&other),
    })?;
    match lists.as_slice() {
        [list] => Ok(list.id),
        [] => Err(Fault::new(
            SoapCode::ListNotFound,
            format!("List not found: {name}; nothing was done"),
        )),
        _ => Err(bad(format!(
            "several lists are named {name}; nothing was done"
        ))),
    }
}

/// `listOperation`: the list found by name (`MKTOLISTNAME`; none is
/// 20111), each lead key looked up (with `strict`, a key that names no
/// single lead fails the call with 20103 and nothing is done), then
/// REST's list call in parts of 300; one status per key.
pub(crate) fn list_operation(rest: &RestClient, call: &ListOperation<'_>) -> Result<String, Fault> {
    if call.list_key_type() != "MKTOLISTNAME" {
        return Err(bad(format!(
            "listKey keyType {}: the bridge finds lists by name (MKTOLISTNAME) only",
            call.list_key_type()
        )));
    }
    let list_id = list_named(rest, call.list_key_value())?;
    let keys = call.members();
    let pairs: Vec<(LeadKeyType, &str)> = keys.iter().map(|k| (k.key_type(), k.value())).collect();
    let found = resolve_keys(rest, &pairs)?;
    if call.strict() {
        if let Some(i) = found.iter().position(|ids| ids.len() != 1) {
            let key = &keys[i];
            return Err(Fault::new(
                SoapCode::LeadNotFound,
                format!(
                    "Lead not found: {}:{} names {} leads; strict: nothing was done",
                    key.key_type().as_str(),
                    key.value(),
                    found[i].len()
                ),
            ));
        }
    }
    // Each key's one lead; keys naming none or several get status false.
    let mut ids: Vec<u32> = found
        .iter()
        .filter_map(|ids| match ids.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut member: BTreeMap<u32, bool> = BTreeMap::new();
    let mut applied = 0;
    for part in ids.chunks(MAX_LIST_LEADS) {
        let answer = match call.operation() {
            ListOperationType::RemoveFromList => rest.remove_from_list(list_id, part),
            ListOperationType::IsMemberOfList => rest.list_membership(list_id, part),
            _ => rest.add_to_list(list_id, part),
        };
        let statuses = answer.map_err(|e| {
            let what = format!(
                "the list operation (leads {}..{} of {}; the {applied} before were applied)",
                applied + 1,
                applied + part.len(),
                ids.len()
            );
            write_failed(&what, &e)
        })?;
        applied += part.len();
        for (id, status) in part.iter().zip(statuses) {
            let ok = matches!(
                status,
                ListMemberStatus::Added | ListMemberStatus::Removed | ListMemberStatus::MemberOf
            );
            member.insert(*id, ok);
        }
    }
    let statuses: Vec<bool> = found
        .iter()
        .map(|ids| ids.len() == 1 && member.get(&ids[0]).copied().unwrap_or(false))
        .collect();
    let mut out = String::with_capacity(256 + 160 * keys.len());
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:successListOperation><result><success>{}</success><statusList>",
        statuses.iter().all(|s| *s)
    );
    for (key, status) in keys.iter().zip(statuses) {
        let _ = write!(
            out,
            "<leadStatus><leadKey><keyType>{}</keyType><keyValue>{}</keyValue></leadKey><status>{status}</status></leadStatus>",
            key.key_type().as_str(),
            escape_text(key.value())
        );
    }
    out.push_str("</statusList></result></ns1:successListOperation>");
    out.push_str(TAIL);
    Ok(out)
}

/// SOAP's name of a REST activity type: each word capitalized, spaces
/// dropped (`Add to List` → `AddToList`).
fn soap_activity_name(rest_name: &str) -> String {
    rest_name
        .split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The most activities one `getLeadActivity` answers by default.
const DEFAULT_ACTIVITY_BATCH: usize = 100;

/// `getLeadActivity`: the lead the key names (none: 20103), the activity
/// types by SOAP name (`includeTypes`, else all but `excludeTypes`), then
/// REST's activities from a paging token (the earliest time asked, or the
/// offset a previous answer gave), in groups of 10 types, up to
/// `batchSize`; `newStartPosition/offset` continues where this left off.
pub(crate) fn get_lead_activity(
    rest: &RestClient,
    call: &GetLeadActivity<'_>,
) -> Result<String, Fault> {
    let key = call.key();
    let found = resolve_keys(rest, &[(key.key_type(), key.value())])?;
    let lead_id = match found[0].as_slice() {
        [id] => *id,
        [] => {
            return Err(Fault::new(
                SoapCode::LeadNotFound,
                format!(
                    "Lead not found: {}:{}",
                    key.key_type().as_str(),
                    key.value()
                ),
            ))
        }
        more => {
            return Err(bad(format!(
                "{}:{} names {} leads; give a key that names one",
                key.key_type().as_str(),
                key.value(),
                more.len()
            )))
        }
    };
    let read = read_activities(rest, call.query(), &[lead_id])?;
    Ok(activity_answer(
        "successGetLeadActivity",
        "leadActivityList",
        "activityRecordList",
        "activityRecord",
        &read,
    ))
}

/// A SOAP answer listing activities: `<ns1:{success}><{list}>` with the
/// counts, `newStartPosition/offset` and each activity in `{record}`s.
fn activity_answer(
    success: &str,
    list: &str,
    records: &str,
    record: &str,
    read: &ActivityRead,
) -> String {
    let mut out = String::with_capacity(512 + 400 * read.records.len());
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:{success}><{list}><returnCount>{}</returnCount><remainingCount>{}</remainingCount><newStartPosition><offset>{}</offset></newStartPosition><{records}>",
        read.records.len(),
        u8::from(read.more),
        escape_text(&read.offset)
    );
    for a in &read.records {
        write_activity(&mut out, record, a, &read.names);
    }
    let _ = write!(out, "</{records}></{list}></ns1:{success}>");
    out.push_str(TAIL);
    out
}

/// Activities read, whether more follow, the offset to go on from, and
/// the SOAP name of each type id.
struct ActivityRead {
    records: Vec<marketo_campaign::rest::Activity>,
    more: bool,
    offset: String,
    names: Vec<(u32, String)>,
}

/// REST's activities for `query`: the types from `activities/types.json`,
/// calls in groups of 10 types from a paging token (the earliest time
/// asked, or the offset `<group>:<token>` a previous answer gave).
fn read_activities(
    rest: &RestClient,
    query: &ActivityQuery<'_>,
    lead_ids: &[u32],
) -> Result<ActivityRead, Fault> {
    let types = rest
        .activity_types()
        .map_err(|e| crate::faults::fault_for(&e))?;
    let wanted = |name: &str| {
        let soap = soap_activity_name(name);
        let listed =
            |list: &[std::borrow::Cow<'_, str>]| list.iter().any(|t| t.eq_ignore_ascii_case(&soap));
        if query.include_types().is_empty() {
            !listed(query.exclude_types())
        } else {
            listed(query.include_types())
        }
    };
    let names: Vec<(u32, String)> = types
        .iter()
        .filter(|t| wanted(&t.name))
        .map(|t| (t.id, soap_activity_name(&t.name)))
        .collect();
    let batch = query
        .batch_size()
        .map_or(DEFAULT_ACTIVITY_BATCH, |n| n as usize);
    let groups: Vec<Vec<u32>> = names
        .iter()
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
        .chunks(MAX_ACTIVITY_TYPES)
        .map(<[u32]>::to_vec)
        .collect();
    let (mut group, mut token) = match query.offset() {
        Some(offset) => {
            let (g, t) = offset
                .split_once(':')
                .and_then(|(g, t)| g.parse::<usize>().ok().map(|g| (g, t.to_owned())))
                .ok_or_else(|| {
                    bad(format!(
                        "startPosition offset {offset:?} is not one the bridge gave"
                    ))
                })?;
            (g, Some(t).filter(|t| !t.is_empty()))
        }
        None => (0, None),
    };
    let since = match query.since() {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .map_err(|_| {
                bad(format!(
                    "startPosition {text:?} is not an xs:dateTime with a zone"
                ))
            })?,
        None => DateTime::UNIX_EPOCH,
    };
    let mut records = Vec::new();
    let mut more = false;
    while group < groups.len() && records.len() < batch {
        let start = match token.take() {
            Some(token) => token,
            None => rest
                .activity_paging_token(since)
                .map_err(|e| crate::faults::fault_for(&e))?,
        };
        let page = rest
            .lead_activities(
                &start,
                &groups[group],
                lead_ids,
                (batch - records.len()).min(300),
            )
            .map_err(|e| crate::faults::fault_for(&e))?;
        records.extend(page.activities);
        if page.more {
            token = Some(page.next_page_token);
            more = true;
            if records.len() >= batch {
                break;
            }
        } else {
            group += 1;
            more = group < groups.len();
        }
    }
    let offset = match (&token, more) {
        (Some(token), true) => format!("{group}:{token}"),
        (None, true) => format!("{group}:"),
        _ => format!("{}:", groups.len()),
    };
    Ok(ActivityRead {
        records,
        more,
        offset,
        names,
    })
}

/// One activity as SOAP writes it, in `element` (`activityRecord`,
/// `leadChangeRecord`).
fn write_activity(
    out: &mut String,
    element: &str,
    a: &marketo_campaign::rest::Activity,
    names: &[(u32, String)],
) {
    let name = names
        .iter()
        .find(|(id, _)| *id == a.type_id)
        .map_or_else(|| a.type_id.to_string(), |(_, name)| name.clone());
    let _ = write!(
        out,
        "<{element}><id>{}</id><activityDateTime>{}</activityDateTime><activityType>{}</activityType>",
        a.id,
        escape_text(&a.date),
        escape_text(&name)
    );
    if let Some(value) = &a.primary_value {
        let _ = write!(out, "<mktgAssetName>{}</mktgAssetName>", escape_text(value));
    }
    out.push_str("<activityAttributes>");
    for (name, value) in &a.attributes {
        let _ = write!(
            out,
            "<attribute><attrName>{}</attrName><attrValue>{}</attrValue></attribute>",
            escape_text(name),
            escape_text(value)
        );
    }
    out.push_str("</activityAttributes>");
    if let Some(campaign) = a.campaign_id {
        let _ = write!(out, "<campaign>{campaign}</campaign>");
    }
    let _ = write!(out, "<mktPersonId>{}</mktPersonId></{element}>", a.lead_id);
}

/// `getLeadChanges`: activities of every lead (or of the leads a
/// `LeadKeySelector` names, at most 30) from `startPosition`, by type,
/// `batchSize`; `newStartPosition/offset` to go on.
pub(crate) fn get_lead_changes(
    rest: &RestClient,
    call: &GetLeadChanges<'_>,
) -> Result<String, Fault> {
    let lead_ids: Vec<u32> = match call.selector() {
        None => Vec::new(),
        Some(LeadSelector::Keys { key_type, values }) => {
            let keys: Vec<(LeadKeyType, &str)> = values
                .iter()
                .map(|v| (*key_type, v.as_ref()))
                .filter(|(_, v)| !v.trim().is_empty())
                .collect();
            let mut ids: Vec<u32> = resolve_keys(rest, &keys)?.into_iter().flatten().collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Err(Fault::new(
                    SoapCode::LeadNotFound,
                    "Lead not found: the leadSelector names no lead",
                ));
            }
            if ids.len() > marketo_campaign::rest::MAX_ACTIVITY_LEADS {
                return Err(bad(format!(
                    "the leadSelector names {} leads; REST reads the activities of at most {} at a time",
                    ids.len(),
                    marketo_campaign::rest::MAX_ACTIVITY_LEADS
                )));
            }
            ids
        }
        Some(_) => {
            return Err(bad(
                "getLeadChanges takes a LeadKeySelector or no leadSelector (every lead)",
            ))
        }
    };
    if call.query().offset().is_none() && call.query().since().is_none() {
        return Err(Fault::new(
            SoapCode::ParameterRequired,
            "Parameter required: startPosition needs oldestCreatedAt, activityCreatedAt or offset",
        ));
    }
    let read = read_activities(rest, call.query(), &lead_ids)?;
    Ok(activity_answer(
        "successGetLeadChanges",
        "result",
        "leadChangeRecordList",
        "leadChangeRecord",
        &read,
    ))
}

/// `names` split into groups whose comma-joined length stays under the
/// URL budget.
fn field_groups<'n>(names: &[&'n str]) -> Vec<Vec<&'n str>> {
    let mut groups: Vec<Vec<&str>> = vec![Vec::new()];
    let mut bytes = 0;
    for name in names {
        if bytes + name.len() + 1 > MAX_FIELDS_BYTES {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += name.len() + 1;
        if let Some(group) = groups.last_mut() {
            group.push(name);
        }
    }
    groups
}

/// The most activity pages `updated_lead_ids` reads (300 activities each).
const MAX_UPDATE_PAGES: usize = 100;

/// The leads created or changed from `oldest` (to `latest`), in the order
/// of their first such activity: REST has no lead query by update time, so
/// this reads the `New Lead` and `Change Data Value` activities from a
/// paging token at `oldest` (at most [`MAX_UPDATE_PAGES`] pages).
fn updated_lead_ids(
    rest: &RestClient,
    oldest: &str,
    latest: Option<&str>,
) -> Result<Vec<u32>, Fault> {
    let time = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|t| t.and_utc())
            })
            .map_err(|_| bad(format!("{text:?} is not an xs:dateTime")))
    };
    let since = time(oldest.trim())?;
    let until = latest.map(|l| time(l.trim())).transpose()?;
    let types = rest
        .activity_types()
        .map_err(|e| crate::faults::fault_for(&e))?;
    let type_ids: Vec<u32> = types
        .iter()
        .filter(|t| t.name == "New Lead" || t.name == "Change Data Value")
        .map(|t| t.id)
        .collect();
    if type_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut token = rest
        .activity_paging_token(since)
        .map_err(|e| crate::faults::fault_for(&e))?;
    let mut ids = Vec::new();
    for _ in 0..MAX_UPDATE_PAGES {
        let page = rest
            .lead_activities(&token, &type_ids, &[], 300)
            .map_err(|e| crate::faults::fault_for(&e))?;
        for activity in &page.activities {
            let when = DateTime::parse_from_rfc3339(&activity.date)
                .map(|t| t.to_utc())
                .ok();
            if let (Some(until), Some(when)) = (until, when) {
                if when > until {
                    continue;
                }
            }
            if !ids.contains(&activity.lead_id) {
                ids.push(activity.lead_id);
            }
        }
        if !page.more {
            break;
        }
        token = page.next_page_token;
    }
    Ok(ids)
}

/// The most leads one `getMultipleLeads` answers by default.
const DEFAULT_LEAD_BATCH: usize = 100;

/// `getMultipleLeads`: by `LeadKeySelector` (REST look-ups of 300 values,
/// leads in id order, `streamPosition` an offset) or `StaticListSelector`
/// (by name or id; REST's pages of 300, `streamPosition` REST's token),
/// `batchSize` up to 1000, `includeAttributes` by SOAP name (unknown:
/// 20105). `LastUpdateAtSelector` is 20110: REST has no lead query by
/// update time.
pub(crate) fn get_multiple_leads(
    rest: &RestClient,
    fields: &Fields,
    call: &GetMultipleLeads<'_>,
) -> Result<String, Fault> {
    let table = fields
        .table(rest, false)
        .map_err(|e| crate::faults::fault_for(&e))?;
    let wanted: Vec<&str> = call
        .include_attributes()
        .iter()
        .map(AsRef::as_ref)
        .collect();
    let names: Vec<String> = if wanted.is_empty() {
        table
            .iter()
            .filter(|f| f.soap_name.is_some())
            .filter_map(|f| f.rest_name.clone())
            .collect()
    } else {
        let resolved = fields
            .resolve(rest, &wanted)
            .map_err(|e| crate::faults::fault_for(&e))?
            .map_err(|name| unknown_field(&name))?;
        let mut names: Vec<String> = vec!["email".into()];
        names.extend(resolved.into_iter().filter_map(|f| f.rest_name));
        names
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let groups = field_groups(&names);
    let batch = call.batch_size().map_or(DEFAULT_LEAD_BATCH, |n| n as usize);
    let (leads, remaining, position) = match call.selector() {
        LeadSelector::Keys { key_type, values } => {
            let Some(filter_type) = key_type.rest_filter_type() else {
                return Err(bad(format!(
                    "keyType {}: Marketo's REST API cannot look leads up by it",
                    key_type.as_str()
                )));
            };
            let values: Vec<&str> = values
                .iter()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .collect();
            if values.iter().any(|v| v.contains(',')) {
                return Err(Fault::new(
                    SoapCode::LeadKeyBad,
                    "Bad lead key: a keyValue holds a comma",
                ));
            }
            let mut by_id: BTreeMap<u64, Lead> = BTreeMap::new();
            for chunk in values.chunks(MAX_FILTER_VALUES) {
                for group in &groups {
                    let found = rest
                        .get_leads(filter_type, chunk, group)
                        .map_err(|e| crate::faults::fault_for(&e))?;
                    for lead in found {
                        if let Some(id) = lead.get("id").and_then(Value::as_u64) {
                            by_id.entry(id).or_default().extend(lead);
                        }
                    }
                }
            }
            let offset = match call.stream_position() {
                None => 0,
                Some(p) => p
                    .strip_prefix("k:")
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| {
                        bad(format!("streamPosition {p:?} is not one the bridge gave"))
                    })?,
            };
            let all: Vec<Lead> = by_id.into_values().collect();
            let end = (offset + batch).min(all.len());
            let page = all[offset.min(end)..end].to_vec();
            (page, all.len() - end, format!("k:{end}"))
        }
        LeadSelector::StaticList { name, id } => {
            let list_id = match (id, name) {
                (Some(id), _) => *id,
                (None, Some(name)) => list_named(rest, name)?,
                (None, None) => return Err(bad("staticListName or staticListId is required")),
            };
            let mut token = match call.stream_position() {
                None => None,
                Some(p) => Some(p.strip_prefix("l:").map(str::to_owned).ok_or_else(|| {
                    bad(format!("streamPosition {p:?} is not one the bridge gave"))
                })?),
            };
            let mut out = Vec::new();
            let mut more = true;
            while more && out.len() < batch {
                let mut by_id: BTreeMap<u64, Lead> = BTreeMap::new();
                let mut order = Vec::new();
                let mut next = None;
                for (g, group) in groups.iter().enumerate() {
                    let (page, page_next) = rest
                        .list_leads(list_id, group, token.as_deref())
                        .map_err(|e| match e.rest_code().map(|c| c.code()) {
                            Some(1013) => Fault::new(
                                SoapCode::ListNotFound,
                                format!("List not found: {list_id}"),
                            ),
                            _ => crate::faults::fault_for(&e),
                        })?;
                    if g == 0 {
                        next = page_next;
                    }
                    for lead in page {
                        if let Some(id) = lead.get("id").and_then(Value::as_u64) {
                            if g == 0 {
                                order.push(id);
                            }
                            by_id.entry(id).or_default().extend(lead);
                        }
                    }
                }
                out.extend(order.into_iter().filter_map(|id| by_id.remove(&id)));
                more = next.is_some();
                token = next;
            }
            let position = token.map_or_else(String::new, |t| format!("l:{t}"));
            (out, usize::from(more), position)
        }
        LeadSelector::LastUpdateAt { oldest, latest } => {
            let ids = updated_lead_ids(rest, oldest, latest.as_deref())?;
            let offset = match call.stream_position() {
                None => 0,
                Some(p) => p
                    .strip_prefix("u:")
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| {
                        bad(format!("streamPosition {p:?} is not one the bridge gave"))
                    })?,
            };
            let end = (offset + batch).min(ids.len());
            let wanted: Vec<String> = ids[offset.min(end)..end]
                .iter()
                .map(u32::to_string)
                .collect();
            let mut by_id: BTreeMap<u64, Lead> = BTreeMap::new();
            for chunk in wanted.chunks(MAX_FILTER_VALUES) {
                let values: Vec<&str> = chunk.iter().map(String::as_str).collect();
                for group in &groups {
                    let found = rest
                        .get_leads("id", &values, group)
                        .map_err(|e| crate::faults::fault_for(&e))?;
                    for lead in found {
                        if let Some(id) = lead.get("id").and_then(Value::as_u64) {
                            by_id.entry(id).or_default().extend(lead);
                        }
                    }
                }
            }
            let page = ids[offset.min(end)..end]
                .iter()
                .filter_map(|id| by_id.remove(&u64::from(*id)))
                .collect();
            (page, ids.len() - end, format!("u:{end}"))
        }
        _ => return Err(bad("this leadSelector is not served by the bridge")),
    };
    let mut out = String::with_capacity(512 + 256 * leads.len());
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:successGetMultipleLeads><result><returnCount>{}</returnCount><remainingCount>{remaining}</remainingCount><newStreamPosition>{}</newStreamPosition><leadRecordList>",
        leads.len(),
        escape_text(&position)
    );
    for lead in &leads {
        write_lead_record(&mut out, lead, &table);
    }
    out.push_str("</leadRecordList></result></ns1:successGetMultipleLeads>");
    out.push_str(TAIL);
    Ok(out)
}

/// The one lead a `mergeLeads` key list names: every key (`attrName` a key
/// type, `attrValue` its value) must name the same single lead; else 20103
/// (none, or keys naming other leads) or 20110 (several for one key).
fn merge_key_lead(
    rest: &RestClient,
    keys: &[ReceivedAttribute<'_>],
    role: &str,
) -> Result<u32, Fault> {
    let mut pairs = Vec::with_capacity(keys.len());
    for key in keys {
        let key_type = key
            .name()
            .parse::<LeadKeyType>()
            .map_err(|_| bad(format!("{role}: {:?} is not a lead key type", key.name())))?;
        pairs.push((key_type, key.value()));
    }
    let found = resolve_keys(rest, &pairs)?;
    let mut lead = None;
    for ((key_type, value), ids) in pairs.iter().zip(&found) {
        let id = match ids.as_slice() {
            [id] => *id,
            [] => {
                return Err(Fault::new(
                    SoapCode::LeadNotFound,
                    format!(
                        "Lead not found: {role} {}:{value}; nothing was merged",
                        key_type.as_str()
                    ),
                ))
            }
            more => {
                return Err(bad(format!(
                    "{role} {}:{value} names {} leads; nothing was merged",
                    key_type.as_str(),
                    more.len()
                )))
            }
        };
        if lead.is_some_and(|l| l != id) {
            return Err(Fault::new(
                SoapCode::LeadNotFound,
                format!(
                    "Lead not found: the {role}'s keys name different leads; nothing was merged"
                ),
            ));
        }
        lead = Some(id);
    }
    lead.ok_or_else(|| bad(format!("{role}: no key given")))
}

/// `mergeLeads`: the winning lead and each losing lead found by their keys
/// (nothing is merged unless each names one lead), then one REST merge.
/// A lost answer is 20011: the merge may have been applied (read the
/// losing leads: a merged lead is gone).
pub(crate) fn merge_leads(rest: &RestClient, call: &MergeLeads<'_>) -> Result<String, Fault> {
    let winner = merge_key_lead(rest, call.winner(), "winning lead")?;
    let mut losers = Vec::with_capacity(call.losers().len());
    for keys in call.losers() {
        let loser = merge_key_lead(rest, keys, "losing lead")?;
        if loser == winner || losers.contains(&loser) {
            return Err(bad(format!(
                "lead {loser} is named twice; nothing was merged"
            )));
        }
        losers.push(loser);
    }
    if losers.len() > marketo_campaign::rest::MAX_MERGE_LOSERS {
        return Err(bad(format!(
            "{} losing leads; a merge takes at most {}",
            losers.len(),
            marketo_campaign::rest::MAX_MERGE_LOSERS
        )));
    }
    rest.merge_leads(winner, &losers).map_err(|e| {
        write_failed(
            "the merge (read the losing leads: a merged lead is gone)",
            &e,
        )
    })?;
    let mut out = String::with_capacity(512);
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<ns1:successMergeLeads><result><mergeStatus><winningLeadId>{winner}</winningLeadId><losingLeadIdList>"
    );
    for loser in &losers {
        let _ = write!(out, "<integerItem>{loser}</integerItem>");
    }
    out.push_str(
        "</losingLeadIdList><status>MERGED</status></mergeStatus></result></ns1:successMergeLeads>",
    );
    out.push_str(TAIL);
    Ok(out)
}
