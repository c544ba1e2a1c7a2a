//! The readers of SOAP's lead operations: `syncLead`, `getLead` and
//! `describeMObject`, their parameters as received (not yet translated
//! to REST: names stay SOAP's).

use std::borrow::Cow;

use super::super::xml::{Lexer, Ns, Start, Stop};
use super::{not_understood, read_lead_list, trimmed, Failure, Order, ReceivedLeadKey};
use crate::error::SoapCode;
use crate::request::LeadKeyType;
use crate::soap::Fault;

/// A lead attribute as received (`leadAttributeList/attribute`): SOAP's
/// `attrName`, the optional `attrType`, `attrValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedAttribute<'a> {
    name: Cow<'a, str>,
    attr_type: Option<Cow<'a, str>>,
    value: Cow<'a, str>,
}

impl ReceivedAttribute<'_> {
    /// `attrName`: SOAP's field name (`FirstName`, `Foo__c`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `attrType`, when sent.
    pub fn attr_type(&self) -> Option<&str> {
        self.attr_type.as_deref()
    }

    /// `attrValue`, as sent.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `syncLead`'s `leadRecord`: the keys it may carry (`Id`, `Email`,
/// `ForeignSysPersonId` with `ForeignSysType`) and its attributes.
/// Empty or nil key elements count as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLeadRecord<'a> {
    id: Option<u32>,
    email: Option<Cow<'a, str>>,
    foreign_sys_person_id: Option<Cow<'a, str>>,
    foreign_sys_type: Option<Cow<'a, str>>,
    attributes: Vec<ReceivedAttribute<'a>>,
}

impl ReceivedLeadRecord<'_> {
    /// `Id`.
    pub fn id(&self) -> Option<u32> {
        self.id
    }

    /// `Email`.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// `ForeignSysPersonId`.
    pub fn foreign_sys_person_id(&self) -> Option<&str> {
        self.foreign_sys_person_id.as_deref()
    }

    /// `ForeignSysType` (`CUSTOM`, `SFDC`, `NETSUITE`).
    pub fn foreign_sys_type(&self) -> Option<&str> {
        self.foreign_sys_type.as_deref()
    }

    /// `leadAttributeList`, in order.
    pub fn attributes(&self) -> &[ReceivedAttribute<'_>] {
        &self.attributes
    }
}

/// The parameters of `syncLead`: the lead record, `returnLead`, and the
/// optional `marketoCookie` to associate after the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLead<'a> {
    record: ReceivedLeadRecord<'a>,
    return_lead: bool,
    marketo_cookie: Option<Cow<'a, str>>,
}

impl SyncLead<'_> {
    /// `leadRecord`.
    pub fn record(&self) -> &ReceivedLeadRecord<'_> {
        &self.record
    }

    /// `returnLead`: answer with the lead as it is after the sync.
    pub fn return_lead(&self) -> bool {
        self.return_lead
    }

    /// `marketoCookie`, when sent and not empty.
    pub fn marketo_cookie(&self) -> Option<&str> {
        self.marketo_cookie.as_deref()
    }
}

/// The parameters of `syncMultipleLeads`: the lead records, in order, and
/// `dedupEnabled` (default true: a record whose email finds a lead updates
/// it; false: every record without an `Id` creates a lead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMultipleLeads<'a> {
    records: Vec<ReceivedLeadRecord<'a>>,
    dedup: bool,
}

impl SyncMultipleLeads<'_> {
    /// `leadRecordList`.
    pub fn records(&self) -> &[ReceivedLeadRecord<'_>] {
        &self.records
    }

    /// `dedupEnabled`.
    pub fn dedup_enabled(&self) -> bool {
        self.dedup
    }
}

pub(super) fn read_sync_multiple_leads<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<SyncMultipleLeads<'a>, Failure> {
    let mut order = Order::new(
        "paramsSyncMultipleLeads",
        &["leadRecordList", "dedupEnabled"],
    );
    let (mut records, mut list, mut dedup) = (Vec::new(), false, None);
    if !params.empty {
        while let Some(child) = x.next_child("paramsSyncMultipleLeads")? {
            match order.place(&child)? {
                0 => {
                    list = true;
                    if !child.empty {
                        while let Some(record) = x.next_child("leadRecordList")? {
                            if !record.is(Ns::None, "leadRecord") {
                                return Err(Stop::Shape(format!(
                                    "unexpected element {} in leadRecordList",
                                    record.local
                                ))
                                .into());
                            }
                            records.push(read_lead_record(x, &record)?);
                        }
                    }
                }
                _ => dedup = present(x.text(&child)?),
            }
        }
    }
    if !list {
        return Err(required("leadRecordList"));
    }
    let dedup = match dedup.as_deref() {
        None | Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => return Err(not_understood("dedupEnabled must be true or false").into()),
    };
    Ok(SyncMultipleLeads { records, dedup })
}

/// `getMultipleLeads`' `leadSelector`, by its `xsi:type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeadSelector<'a> {
    /// `LeadKeySelector`: a key type and its values.
    Keys {
        /// `keyType`.
        key_type: LeadKeyType,
        /// `keyValues/stringItem`, as sent.
        values: Vec<Cow<'a, str>>,
    },
    /// `StaticListSelector`: a list by name or id.
    StaticList {
        /// `staticListName`.
        name: Option<Cow<'a, str>>,
        /// `staticListId`.
        id: Option<u32>,
    },
    /// `LastUpdateAtSelector` (or the top-level `lastUpdatedAt`): leads
    /// updated from `oldest` (to `latest`).
    LastUpdateAt {
        /// `oldestUpdatedAt`.
        oldest: Cow<'a, str>,
        /// `latestUpdatedAt`.
        latest: Option<Cow<'a, str>>,
    },
}

/// The parameters of `getMultipleLeads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMultipleLeads<'a> {
    selector: LeadSelector<'a>,
    stream_position: Option<Cow<'a, str>>,
    batch_size: Option<u32>,
    include_attributes: Vec<Cow<'a, str>>,
}

impl GetMultipleLeads<'_> {
    /// `leadSelector`.
    pub fn selector(&self) -> &LeadSelector<'_> {
        &self.selector
    }

    /// `streamPosition`: where a previous answer's `newStreamPosition`
    /// left off.
    pub fn stream_position(&self) -> Option<&str> {
        self.stream_position.as_deref()
    }

    /// `batchSize` (1 to 1000).
    pub fn batch_size(&self) -> Option<u32> {
        self.batch_size
    }

    /// `includeAttributes/stringItem`: SOAP names; empty when not given.
    pub fn include_attributes(&self) -> &[Cow<'_, str>] {
        &self.include_attributes
    }
}

/// The texts of a list's `item` children (`stringItem`, `activityType`).
fn read_items<'a>(
    x: &mut Lexer<'a>,
    list: &Start<'a>,
    parent: &str,
    item_name: &str,
) -> Result<Vec<Cow<'a, str>>, Stop> {
    let mut out = Vec::new();
    if list.empty {
        return Ok(out);
    }
    while let Some(item) = x.next_child(parent)? {
        if !item.is(Ns::None, item_name) {
            return Err(Stop::Shape(format!(
                "unexpected element {} in {parent}",
                item.local
            )));
        }
        out.push(x.text(&item)?);
    }
    Ok(out)
}

fn read_selector<'a>(x: &mut Lexer<'a>, element: &Start<'a>) -> Result<LeadSelector<'a>, Failure> {
    let kind = element.xsi_type.unwrap_or_default();
    let fields: &'static [&'static str] = match kind {
        "LeadKeySelector" => &["keyType", "keyValues"],
        "StaticListSelector" => &["staticListName", "staticListId"],
        "LastUpdateAtSelector" => &["latestUpdatedAt", "oldestUpdatedAt"],
        "" => return Err(bad("leadSelector needs an xsi:type (LeadKeySelector, StaticListSelector or LastUpdateAtSelector)".into())),
        other => return Err(bad(format!("leadSelector xsi:type {other:?} is not a lead selector"))),
    };
    let mut order = Order::new("leadSelector", fields);
    let mut text: [Option<Cow<'a, str>>; 2] = Default::default();
    let mut values = Vec::new();
    if !element.empty {
        while let Some(child) = x.next_child("leadSelector")? {
            let index = order.place(&child)?;
            if kind == "LeadKeySelector" && index == 1 {
                values = read_items(x, &child, "keyValues", "stringItem")?;
            } else {
                text[index] = present(x.text(&child)?);
            }
        }
    }
    let [first, second] = text;
    match kind {
        "LeadKeySelector" => {
            let key_type = first
                .ok_or_else(|| required("leadSelector/keyType"))?
                .parse::<LeadKeyType>()
                .map_err(|_| bad("unknown keyType".into()))?;
            Ok(LeadSelector::Keys { key_type, values })
        }
        "StaticListSelector" => {
            let id = match second {
                None => None,
                Some(id) => Some(
                    id.parse::<u32>()
                        .map_err(|_| bad(format!("staticListId {id:?} is not a list id")))?,
                ),
            };
            if first.is_none() && id.is_none() {
                return Err(required("staticListName or staticListId"));
            }
            Ok(LeadSelector::StaticList { name: first, id })
        }
        _ => Ok(LeadSelector::LastUpdateAt {
            oldest: second.ok_or_else(|| required("oldestUpdatedAt"))?,
            latest: first,
        }),
    }
}

pub(super) fn read_get_multiple_leads<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<GetMultipleLeads<'a>, Failure> {
    const FIELDS: &[&str] = &[
        "leadSelector",
        "lastUpdatedAt",
        "streamPosition",
        "batchSize",
        "includeAttributes",
    ];
    let mut order = Order::new("paramsGetMultipleLeads", FIELDS);
    let (mut selector, mut last_updated, mut position, mut batch) = (None, None, None, None);
    let mut include = Vec::new();
    if !params.empty {
        while let Some(child) = x.next_child("paramsGetMultipleLeads")? {
            match order.place(&child)? {
                0 => selector = Some(read_selector(x, &child)?),
                1 => last_updated = present(x.text(&child)?),
                2 => position = present(x.text(&child)?),
                3 => batch = present(x.text(&child)?),
                _ => include = read_items(x, &child, "includeAttributes", "stringItem")?,
            }
        }
    }
    let selector = match (selector, last_updated) {
        (Some(selector), _) => selector,
        (None, Some(oldest)) => LeadSelector::LastUpdateAt {
            oldest,
            latest: None,
        },
        (None, None) => return Err(required("leadSelector")),
    };
    let batch_size = match batch {
        None => None,
        Some(n) => Some(
            n.parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad(format!("batchSize {n:?} is not 1 to 1000")))?,
        ),
    };
    Ok(GetMultipleLeads {
        selector,
        stream_position: position,
        batch_size,
        include_attributes: include.into_iter().map(trimmed).collect(),
    })
}

/// The parameters of `mergeLeads`: the winning lead's keys and each
/// losing lead's, as SOAP sends them (`attribute`s whose `attrName` is a
/// key type, `IDNUM`, `EMAIL`, …, and `attrValue` its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeLeads<'a> {
    winner: Vec<ReceivedAttribute<'a>>,
    losers: Vec<Vec<ReceivedAttribute<'a>>>,
}

impl MergeLeads<'_> {
    /// `winningLeadKeyList`.
    pub fn winner(&self) -> &[ReceivedAttribute<'_>] {
        &self.winner
    }

    /// `losingLeadKeyLists`: one key list per losing lead.
    pub fn losers(&self) -> &[Vec<ReceivedAttribute<'_>>] {
        &self.losers
    }
}

pub(super) fn read_merge_leads<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<MergeLeads<'a>, Failure> {
    let mut order = Order::new(
        "paramsMergeLeads",
        &["winningLeadKeyList", "losingLeadKeyLists"],
    );
    let (mut winner, mut losers, mut seen) = (Vec::new(), Vec::new(), [false; 2]);
    if !params.empty {
        while let Some(child) = x.next_child("paramsMergeLeads")? {
            let index = order.place(&child)?;
            seen[index] = true;
            if index == 0 {
                read_attributes(x, &child, &mut winner)?;
            } else if !child.empty {
                while let Some(list) = x.next_child("losingLeadKeyLists")? {
                    if !list.is(Ns::None, "keyList") {
                        return Err(Stop::Shape(format!(
                            "unexpected element {} in losingLeadKeyLists",
                            list.local
                        ))
                        .into());
                    }
                    let mut keys = Vec::new();
                    read_attributes(x, &list, &mut keys)?;
                    losers.push(keys);
                }
            }
        }
    }
    if !seen[0] || winner.is_empty() {
        return Err(required("winningLeadKeyList"));
    }
    if !seen[1] || losers.is_empty() {
        return Err(required("losingLeadKeyLists"));
    }
    Ok(MergeLeads { winner, losers })
}

/// The parameters of `getLead`: one lead key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetLead<'a> {
    key: ReceivedLeadKey<'a>,
}

impl GetLead<'_> {
    /// `leadKey`.
    pub fn key(&self) -> &ReceivedLeadKey<'_> {
        &self.key
    }
}

/// The parameters of `describeMObject`: the object's name (`LeadRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeMObject<'a> {
    object_name: Cow<'a, str>,
}

impl DescribeMObject<'_> {
    /// `objectName`.
    pub fn object_name(&self) -> &str {
        &self.object_name
    }
}

/// `listOperation`'s operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListOperationType {
    /// `ADDTOLIST`.
    AddToList,
    /// `REMOVEFROMLIST`.
    RemoveFromList,
    /// `ISMEMBEROFLIST`.
    IsMemberOfList,
}

/// The parameters of `listOperation`: the operation, the list key
/// (`keyType`, `keyValue`: `MKTOLISTNAME`, `MKTOSALESUSERID`,
/// `SFDCLEADOWNERID`), the lead keys, `strict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOperation<'a> {
    operation: ListOperationType,
    list_key_type: Cow<'a, str>,
    list_key_value: Cow<'a, str>,
    members: Vec<ReceivedLeadKey<'a>>,
    strict: bool,
}

impl ListOperation<'_> {
    /// `listOperation`.
    pub fn operation(&self) -> ListOperationType {
        self.operation
    }

    /// `listKey/keyType`, e.g. `MKTOLISTNAME`.
    pub fn list_key_type(&self) -> &str {
        &self.list_key_type
    }

    /// `listKey/keyValue`: the list's name for `MKTOLISTNAME`.
    pub fn list_key_value(&self) -> &str {
        &self.list_key_value
    }

    /// `listMemberList`, in order (every key: SOAP's list calls take no
    /// 100-key cut).
    pub fn members(&self) -> &[ReceivedLeadKey<'_>] {
        &self.members
    }

    /// `strict`: when a lead key names no lead, nothing is done (default
    /// false: the others are).
    pub fn strict(&self) -> bool {
        self.strict
    }
}

pub(super) fn read_list_operation<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<ListOperation<'a>, Failure> {
    const FIELDS: &[&str] = &[
        "listOperation",
        "listKey",
        "listMemberList",
        "strict",
        "skipActivityLog",
    ];
    let mut order = Order::new("paramsListOperation", FIELDS);
    let (mut operation, mut key, mut strict) = (None, None, None);
    let mut members = Vec::new();
    let mut member_list = false;
    if !params.empty {
        while let Some(child) = x.next_child("paramsListOperation")? {
            match order.place(&child)? {
                0 => operation = Some(trimmed(x.text(&child)?)),
                1 => {
                    let mut key_order = Order::new("listKey", &["keyType", "keyValue"]);
                    let (mut key_type, mut value) = (None, None);
                    if !child.empty {
                        while let Some(field) = x.next_child("listKey")? {
                            match key_order.place(&field)? {
                                0 => key_type = Some(trimmed(x.text(&field)?)),
                                _ => value = Some(x.text(&field)?),
                            }
                        }
                    }
                    key = key_type.zip(value);
                }
                2 => {
                    member_list = true;
                    let mut ignored = 0;
                    read_lead_list(x, &child, &mut members, &mut ignored, usize::MAX)?;
                }
                3 => strict = present(x.text(&child)?),
                _ => {
                    x.text(&child)?;
                }
            }
        }
    }
    let operation = match operation.as_deref() {
        Some("ADDTOLIST") => ListOperationType::AddToList,
        Some("REMOVEFROMLIST") => ListOperationType::RemoveFromList,
        Some("ISMEMBEROFLIST") => ListOperationType::IsMemberOfList,
        Some(other) => {
            return Err(bad(format!(
                "listOperation {other:?} is not ADDTOLIST, REMOVEFROMLIST or ISMEMBEROFLIST"
            )))
        }
        None => return Err(required("listOperation")),
    };
    let (list_key_type, list_key_value) = key.ok_or_else(|| required("listKey"))?;
    if !member_list {
        return Err(required("listMemberList"));
    }
    let strict = match strict.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(not_understood("strict must be true or false").into()),
    };
    Ok(ListOperation {
        operation,
        list_key_type,
        list_key_value,
        members,
        strict,
    })
}

/// What activities to read (`getLeadActivity`, `getLeadChanges`): the
/// types to include or exclude (SOAP's names, `AddToList`), where to start
/// (`startPosition`), how many (`batchSize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery<'a> {
    include: Vec<Cow<'a, str>>,
    exclude: Vec<Cow<'a, str>>,
    offset: Option<Cow<'a, str>>,
    since: Option<Cow<'a, str>>,
    batch_size: Option<u32>,
}

impl ActivityQuery<'_> {
    /// `activityFilter/includeTypes`: empty when not given.
    pub fn include_types(&self) -> &[Cow<'_, str>] {
        &self.include
    }

    /// `activityFilter/excludeTypes`: empty when not given.
    pub fn exclude_types(&self) -> &[Cow<'_, str>] {
        &self.exclude
    }

    /// `startPosition/offset`: where a previous answer's
    /// `newStartPosition` left off.
    pub fn offset(&self) -> Option<&str> {
        self.offset.as_deref()
    }

    /// `startPosition`'s `activityCreatedAt`, else `oldestCreatedAt`: the
    /// earliest activity wanted.
    pub fn since(&self) -> Option<&str> {
        self.since.as_deref()
    }

    /// `batchSize`.
    pub fn batch_size(&self) -> Option<u32> {
        self.batch_size
    }
}

/// The parameters of `getLeadActivity`: one lead key and what activities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetLeadActivity<'a> {
    key: ReceivedLeadKey<'a>,
    query: ActivityQuery<'a>,
}

impl GetLeadActivity<'_> {
    /// `leadKey`.
    pub fn key(&self) -> &ReceivedLeadKey<'_> {
        &self.key
    }

    /// What activities.
    pub fn query(&self) -> &ActivityQuery<'_> {
        &self.query
    }
}

/// `activityFilter`: the include and exclude type lists.
type TypeFilter<'a> = (Vec<Cow<'a, str>>, Vec<Cow<'a, str>>);

fn read_activity_filter<'a>(
    x: &mut Lexer<'a>,
    element: &Start<'a>,
) -> Result<TypeFilter<'a>, Stop> {
    let mut filter = Order::new("activityFilter", &["includeTypes", "excludeTypes"]);
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    if !element.empty {
        while let Some(list) = x.next_child("activityFilter")? {
            match filter.place(&list)? {
                0 => include = read_items(x, &list, "includeTypes", "activityType")?,
                _ => exclude = read_items(x, &list, "excludeTypes", "activityType")?,
            }
        }
    }
    Ok((include, exclude))
}

/// `startPosition`: the offset a previous answer gave, and the earliest
/// time asked (`activityCreatedAt`, else `oldestCreatedAt`).
type Position<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

fn read_start_position<'a>(x: &mut Lexer<'a>, element: &Start<'a>) -> Result<Position<'a>, Stop> {
    let mut position = Order::new(
        "startPosition",
        &[
            "latestCreatedAt",
            "oldestCreatedAt",
            "activityCreatedAt",
            "offset",
        ],
    );
    let (mut offset, mut since) = (None, None);
    if !element.empty {
        while let Some(field) = x.next_child("startPosition")? {
            let index = position.place(&field)?;
            let text = present(x.text(&field)?);
            match index {
                1 | 2 if text.is_some() => since = text,
                3 => offset = text,
                _ => {}
            }
        }
    }
    Ok((offset, since))
}

/// `batchSize`: 1 to 1000, or none.
fn read_batch_size<'a>(x: &mut Lexer<'a>, element: &Start<'a>) -> Result<Option<u32>, Failure> {
    match present(x.text(element)?) {
        None => Ok(None),
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .map(Some)
            .ok_or_else(|| bad(format!("batchSize {n:?} is not 1 to 1000"))),
    }
}

pub(super) fn read_get_lead_activity<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<GetLeadActivity<'a>, Failure> {
    const FIELDS: &[&str] = &["leadKey", "activityFilter", "startPosition", "batchSize"];
    let mut order = Order::new("paramsGetLeadActivity", FIELDS);
    let mut key = None;
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    let (mut offset, mut since, mut batch) = (None, None, None);
    if !params.empty {
        while let Some(child) = x.next_child("paramsGetLeadActivity")? {
            match order.place(&child)? {
                0 => key = Some(read_one_lead_key(x, &child)?),
                1 => (include, exclude) = read_activity_filter(x, &child)?,
                2 => (offset, since) = read_start_position(x, &child)?,
                _ => batch = read_batch_size(x, &child)?,
            }
        }
    }
    let key = key.ok_or_else(|| required("leadKey"))?;
    Ok(GetLeadActivity {
        key,
        query: ActivityQuery {
            include,
            exclude,
            offset,
            since,
            batch_size: batch,
        },
    })
}

/// The parameters of `getLeadChanges`: what activities (`startPosition`
/// required) and the leads (`leadSelector`; none: every lead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetLeadChanges<'a> {
    query: ActivityQuery<'a>,
    selector: Option<LeadSelector<'a>>,
}

impl GetLeadChanges<'_> {
    /// What activities.
    pub fn query(&self) -> &ActivityQuery<'_> {
        &self.query
    }

    /// `leadSelector`, if given.
    pub fn selector(&self) -> Option<&LeadSelector<'_>> {
        self.selector.as_ref()
    }
}

pub(super) fn read_get_lead_changes<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<GetLeadChanges<'a>, Failure> {
    const FIELDS: &[&str] = &[
        "startPosition",
        "activityFilter",
        "batchSize",
        "leadSelector",
    ];
    let mut order = Order::new("paramsGetLeadChanges", FIELDS);
    let mut position = None;
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    let (mut batch, mut selector) = (None, None);
    if !params.empty {
        while let Some(child) = x.next_child("paramsGetLeadChanges")? {
            match order.place(&child)? {
                0 => position = Some(read_start_position(x, &child)?),
                1 => (include, exclude) = read_activity_filter(x, &child)?,
                2 => batch = read_batch_size(x, &child)?,
                _ => selector = Some(read_selector(x, &child)?),
            }
        }
    }
    let (offset, since) = position.ok_or_else(|| required("startPosition"))?;
    Ok(GetLeadChanges {
        query: ActivityQuery {
            include,
            exclude,
            offset,
            since,
            batch_size: batch,
        },
        selector,
    })
}

fn required(name: &str) -> Failure {
    Failure::Param(Fault::new(
        SoapCode::ParameterRequired,
        format!("Parameter required: {name}"),
    ))
}

fn bad(reason: String) -> Failure {
    Failure::Param(Fault::new(
        SoapCode::BadParameter,
        format!("Bad parameter: {reason}"),
    ))
}

/// Text, or `None` when empty (as an `xsi:nil` element reads).
fn present(text: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let text = trimmed(text);
    (!text.is_empty()).then_some(text)
}

pub(super) fn read_sync_lead<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<SyncLead<'a>, Failure> {
    const FIELDS: &[&str] = &["leadRecord", "returnLead", "marketoCookie"];
    let mut order = Order::new("paramsSyncLead", FIELDS);
    let (mut record, mut return_lead, mut cookie) = (None, None, None);
    if !params.empty {
        while let Some(child) = x.next_child("paramsSyncLead")? {
            match order.place(&child)? {
                0 => record = Some(read_lead_record(x, &child)?),
                1 => return_lead = Some(x.text(&child)?),
                _ => cookie = present(x.text(&child)?),
            }
        }
    }
    let record = record.ok_or_else(|| required("leadRecord"))?;
    let return_lead = match return_lead.map(trimmed).as_deref() {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => return Err(not_understood("returnLead must be true or false").into()),
        None => return Err(required("returnLead")),
    };
    Ok(SyncLead {
        record,
        return_lead,
        marketo_cookie: cookie,
    })
}

fn read_lead_record<'a>(
    x: &mut Lexer<'a>,
    element: &Start<'a>,
) -> Result<ReceivedLeadRecord<'a>, Failure> {
    const FIELDS: &[&str] = &[
        "Id",
        "Email",
        "ForeignSysPersonId",
        "ForeignSysType",
        "leadAttributeList",
    ];
    let mut order = Order::new("leadRecord", FIELDS);
    let mut text: [Option<Cow<'a, str>>; 4] = Default::default();
    let mut attributes = Vec::new();
    if !element.empty {
        while let Some(child) = x.next_child("leadRecord")? {
            match order.place(&child)? {
                4 => read_attributes(x, &child, &mut attributes)?,
                index => text[index] = present(x.text(&child)?),
            }
        }
    }
    let [id, email, foreign_id, foreign_type] = text;
    let id = match id {
        None => None,
        Some(id) => Some(
            id.parse::<u32>()
                .ok()
                .filter(|&id| id > 0)
                .ok_or_else(|| bad(format!("Id {id:?} is not a lead id")))?,
        ),
    };
    if let Some(kind) = &foreign_type {
        if !matches!(kind.as_ref(), "CUSTOM" | "SFDC" | "NETSUITE") {
            return Err(bad(format!(
                "ForeignSysType {kind:?} is not CUSTOM, SFDC or NETSUITE"
            )));
        }
    }
    if foreign_id.is_some() && foreign_type.is_none() {
        return Err(bad(
            "ForeignSysType must be given with ForeignSysPersonId".into()
        ));
    }
    Ok(ReceivedLeadRecord {
        id,
        email,
        foreign_sys_person_id: foreign_id,
        foreign_sys_type: foreign_type,
        attributes,
    })
}

fn read_attributes<'a>(
    x: &mut Lexer<'a>,
    list: &Start<'a>,
    out: &mut Vec<ReceivedAttribute<'a>>,
) -> Result<(), Stop> {
    const FIELDS: &[&str] = &["attrName", "attrType", "attrValue"];
    if list.empty {
        return Ok(());
    }
    let parent = list.local;
    while let Some(attribute) = x.next_child(parent)? {
        if !attribute.is(Ns::None, "attribute") {
            return Err(Stop::Shape(format!(
                "unexpected element {} in {parent}",
                attribute.local
            )));
        }
        let mut order = Order::new("attribute", FIELDS);
        let mut text: [Option<Cow<'a, str>>; 3] = Default::default();
        if !attribute.empty {
            while let Some(field) = x.next_child("attribute")? {
                let index = order.place(&field)?;
                text[index] = Some(x.text(&field)?);
            }
        }
        let [Some(name), attr_type, Some(value)] = text else {
            return Err(Stop::Shape("attribute needs attrName and attrValue".into()));
        };
        out.push(ReceivedAttribute {
            name: trimmed(name),
            attr_type: attr_type.and_then(present),
            value,
        });
    }
    Ok(())
}

/// One `leadKey` (`keyType`, `keyValue`): a missing part is 20109, an
/// unknown type 20110.
fn read_one_lead_key<'a>(
    x: &mut Lexer<'a>,
    element: &Start<'a>,
) -> Result<ReceivedLeadKey<'a>, Failure> {
    let mut order = Order::new("leadKey", &["keyType", "keyValue"]);
    let (mut key_type, mut value) = (None, None);
    if !element.empty {
        while let Some(field) = x.next_child("leadKey")? {
            match order.place(&field)? {
                0 => key_type = Some(x.text(&field)?),
                _ => value = Some(x.text(&field)?),
            }
        }
    }
    let (Some(key_type), Some(value)) = (key_type, value) else {
        return Err(required("leadKey/keyType and leadKey/keyValue"));
    };
    let key_type = trimmed(key_type)
        .parse::<LeadKeyType>()
        .map_err(|_| bad("unknown keyType".into()))?;
    Ok(ReceivedLeadKey { key_type, value })
}

pub(super) fn read_get_lead<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<GetLead<'a>, Failure> {
    let mut key = None;
    if !params.empty {
        while let Some(child) = x.next_child("paramsGetLead")? {
            if !child.is(Ns::None, "leadKey") || key.is_some() {
                return Err(Stop::Shape(format!(
                    "unexpected or out-of-order element {} in paramsGetLead",
                    child.local
                ))
                .into());
            }
            key = Some(read_one_lead_key(x, &child)?);
        }
    }
    let key = key.ok_or_else(|| required("leadKey"))?;
    Ok(GetLead { key })
}

pub(super) fn read_describe<'a>(
    x: &mut Lexer<'a>,
    params: &Start<'a>,
) -> Result<DescribeMObject<'a>, Failure> {
    let mut order = Order::new("paramsDescribeMObject", &["objectName"]);
    let mut name = None;
    if !params.empty {
        while let Some(child) = x.next_child("paramsDescribeMObject")? {
            order.place(&child)?;
            name = present(x.text(&child)?);
        }
    }
    let object_name = name.ok_or_else(|| required("objectName"))?;
    Ok(DescribeMObject { object_name })
}
