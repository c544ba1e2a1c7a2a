//! The sandbox's SOAP request reader as it was before the codec: a
//! namespace-aware tree (quick-xml `NsReader`), then a walk over it. Kept,
//! unchanged in substance, as the baseline `benches/codec.rs` measures the
//! codec against; nothing else uses it (it lives with the benches, not in
//! `src/`).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use marketo_campaign::soap::{MKTOWS_NS, SOAP_ENV_NS};

const MAX_DEPTH: usize = 16;
const MAX_ELEMENTS: usize = 20_000;

/// An element: its namespace (None when unqualified), local name, children
/// and text.
#[derive(Debug, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// `true` for an element `name` in namespace `ns` (None: unqualified).
    pub fn is(&self, ns: Option<&str>, name: &str) -> bool {
        self.ns.as_deref() == ns && self.name == name
    }
}

/// Parses a whole document into its root element. Refuses DOCTYPEs (and so
/// entity declarations), deep nesting and huge element counts.
pub fn parse(body: &[u8]) -> Result<Element, String> {
    let mut reader = NsReader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| format!("malformed XML: {e}"))?;
        let ns = match ns {
            ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(format!(
                    "undeclared namespace prefix {:?}",
                    String::from_utf8_lossy(&prefix)
                ))
            }
        };
        match event {
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err("content after the root element".into());
            }
            Event::Start(e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err("the document is too deep or too large".into());
                }
                stack.push(Element {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err("the document is too large".into());
                }
                let element = Element {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| format!("bad text: {e}"))?;
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c).map_err(|e| format!("bad CDATA: {e}"))?;
                match stack.last_mut() {
                    Some(element) => element.text.push_str(text),
                    None => return Err("CDATA outside the root element".into()),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

/// What the old reader extracted from a `requestCampaign` envelope before
/// looking anything up: every field, decoded and checked as it did.
pub fn read(body: &[u8]) -> Result<usize, String> {
    let root = parse(body)?;
    if !root.is(Some(SOAP_ENV_NS), "Envelope") {
        return Err("the root element is not a SOAP 1.1 Envelope".into());
    }
    let (header, body) = match root.children.as_slice() {
        [header, body]
            if header.is(Some(SOAP_ENV_NS), "Header") && body.is(Some(SOAP_ENV_NS), "Body") =>
        {
            (header, body)
        }
        _ => return Err("the Envelope must hold a Header then a Body".into()),
    };
    let auth = header
        .children
        .iter()
        .find(|e| e.is(Some(MKTOWS_NS), "AuthenticationHeader"))
        .ok_or("no AuthenticationHeader")?;
    let [params] = body.children.as_slice() else {
        return Err("the Body must hold exactly one element".into());
    };
    if params.ns.as_deref() != Some(MKTOWS_NS) || params.name != "paramsRequestCampaign" {
        return Err("not a requestCampaign".into());
    }
    let fields = children_in_order(
        auth,
        &[
            "mktowsUserId",
            "requestSignature",
            "requestTimestamp",
            "audit",
            "mode",
        ],
    )?;
    let (Some(user), Some(signature), Some(timestamp)) = (fields[0], fields[1], fields[2]) else {
        return Err("the AuthenticationHeader is incomplete".into());
    };
    let mut size = text_of(user)?.len() + text_of(signature)?.len() + text_of(timestamp)?.len();
    let fields = children_in_order(
        params,
        &[
            "source",
            "campaignId",
            "leadList",
            "programName",
            "campaignName",
            "programTokenList",
        ],
    )?;
    let [source, campaign_id, lead_list, program_name, campaign_name, token_list] = fields[..]
    else {
        return Err("internal: field count".into());
    };
    match source.map(text_of).transpose()? {
        Some("MKTOWS" | "SALES") => {}
        _ => return Err("source must be MKTOWS or SALES".into()),
    }
    match (campaign_id, program_name, campaign_name, token_list) {
        (Some(id), None, None, None) => {
            let id: u32 = text_of(id)?
                .trim()
                .parse()
                .map_err(|_| "campaignId must be an integer")?;
            size += id as usize;
        }
        (None, Some(program), Some(name), Some(_)) => {
            size += text_of(program)?.len() + text_of(name)?.len();
        }
        _ => return Err("Bad parameter".into()),
    }
    if let Some(list) = token_list {
        for attrib in items(list, "attrib")? {
            let f = children_in_order(attrib, &["name", "value"])?;
            match (f[0], f[1]) {
                (Some(name), Some(value)) => size += text_of(name)?.len() + text_of(value)?.len(),
                _ => return Err("attrib needs name and value".into()),
            }
        }
    }
    let keys = match lead_list {
        Some(list) => items(list, "leadKey")?,
        None => &[],
    };
    for key in keys.iter().take(marketo_campaign::MAX_LEADS_PER_CALL) {
        let f = children_in_order(key, &["keyType", "keyValue"])?;
        let (Some(key_type), Some(value)) = (f[0], f[1]) else {
            return Err("leadKey needs keyType and keyValue".into());
        };
        let key_type: marketo_campaign::LeadKeyType =
            text_of(key_type)?.parse().map_err(|_| "unknown keyType")?;
        size += key_type as usize + text_of(value)?.len();
    }
    Ok(size)
}

fn children_in_order<'e>(
    element: &'e Element,
    order: &[&str],
) -> Result<Vec<Option<&'e Element>>, String> {
    let mut found: Vec<Option<&Element>> = vec![None; order.len()];
    let mut position = 0;
    for child in &element.children {
        if child.ns.is_some() {
            return Err(format!(
                "{} must be unqualified in {}",
                child.name, element.name
            ));
        }
        let index = order[position..]
            .iter()
            .position(|name| *name == child.name)
            .map(|i| i + position)
            .ok_or_else(|| {
                format!(
                    "unexpected or out-of-order element {} in {}",
                    child.name, element.name
                )
            })?;
        found[index] = Some(child);
        position = index + 1;
    }
    if !element.text.trim().is_empty() && !element.children.is_empty() {
        return Err(format!("stray text in {}", element.name));
    }
    Ok(found)
}

fn items<'e>(list: &'e Element, item: &str) -> Result<&'e [Element], String> {
    if let Some(bad) = list.children.iter().find(|c| !c.is(None, item)) {
        return Err(format!("unexpected element {} in {}", bad.name, list.name));
    }
    Ok(&list.children)
}

fn text_of(element: &Element) -> Result<&str, String> {
    if element.children.is_empty() {
        Ok(&element.text)
    } else {
        Err(format!("{} must hold text", element.name))
    }
}
