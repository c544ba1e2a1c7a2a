//! A small, bounded, namespace-aware XML tree for the sandbox's request reader.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

const MAX_DEPTH: usize = 16;
const MAX_ELEMENTS: usize = 20_000;

/// An element: its namespace (None when unqualified), local name, children
/// and text.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) ns: Option<String>,
    pub(crate) name: String,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

impl Element {
    /// `true` for an element `name` in namespace `ns` (None: unqualified).
    pub(crate) fn is(&self, ns: Option<&str>, name: &str) -> bool {
        self.ns.as_deref() == ns && self.name == name
    }
}

/// Parses a whole document into its root element. Refuses DOCTYPEs (and so
/// entity declarations), deep nesting and huge element counts.
pub(crate) fn parse(body: &[u8]) -> Result<Element, String> {
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
