//! Reading a service's answer into lead field updates (response mappings).

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

use super::definition::{ResponseType, Webhook};

impl Webhook {
    /// The lead field updates the answer makes through the response
    /// mappings, in mapping order: none unless `status` is 2xx (Marketo
    /// updates leads on 2xx only). A mapping whose attribute is not in the
    /// body (or a body that is not JSON / XML as
    /// [`response_type`](Webhook::response_type) says) maps nothing. JSON
    /// strings map as they are, numbers and booleans as written, objects and
    /// arrays as JSON text; `null` maps nothing. XML elements map their text.
    ///
    /// ```
    /// use marketo_campaign::webhook::Webhook;
    /// let webhook = Webhook::from_json(r#"{"url": "https://e.com", "request_type": "POST",
    ///     "response_mappings": [{"attribute": "registrant.ids[1]", "field": "webinarId"}]}"#)?;
    /// let body = r#"{"registrant": {"ids": ["a", 42]}}"#;
    /// assert_eq!(webhook.map_response(201, body), [("webinarId".to_owned(), "42".to_owned())]);
    /// assert!(webhook.map_response(500, body).is_empty());
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn map_response(&self, status: u16, body: &str) -> Vec<(String, String)> {
        if !(200..300).contains(&status) || self.response_mappings.is_empty() {
            return Vec::new();
        }
        let parsed = match self.response_type {
            ResponseType::Json => match serde_json::from_str::<Value>(body) {
                Ok(json) => Parsed::Json(json),
                Err(_) => return Vec::new(),
            },
            ResponseType::Xml => match xml_tree(body) {
                Some(root) => Parsed::Xml(root),
                None => return Vec::new(),
            },
        };
        self.response_mappings
            .iter()
            .filter_map(|m| {
                let path = m.attribute.trim();
                let value = match &parsed {
                    Parsed::Json(json) => json_at(json, path),
                    Parsed::Xml(root) => xml_at(root, path),
                };
                value.map(|v| (m.field.trim().to_owned(), v))
            })
            .collect()
    }
}

/// A parsed answer.
enum Parsed {
    Json(Value),
    Xml(Element),
}

/// `a.b[0].c` → [("a", []), ("b", [0]), ("c", [])]; `None` if malformed.
fn segments(path: &str) -> Option<Vec<(&str, Vec<usize>)>> {
    path.split('.')
        .map(|segment| {
            let (name, mut rest) = match segment.find('[') {
                Some(i) => (&segment[..i], &segment[i..]),
                None => (segment, ""),
            };
            let mut indexes = Vec::new();
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner.find(']')?;
                indexes.push(inner[..close].trim().parse().ok()?);
                rest = &inner[close + 1..];
            }
            rest.is_empty().then_some((name.trim(), indexes))
        })
        .collect()
}

fn json_at(json: &Value, path: &str) -> Option<String> {
    let mut here = json;
    for (name, indexes) in segments(path)? {
        if !name.is_empty() {
            here = here.get(name)?;
        }
        for index in indexes {
            here = here.get(index)?;
        }
    }
    match here {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An XML element: its name, its text, its child elements.
#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

/// The root element of `xml`, or `None` if it is not well-formed.
fn xml_tree(xml: &str) -> Option<Element> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => stack.push(Element {
                name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                ..Element::default()
            }),
            Event::Empty(start) => {
                let element = Element {
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                stack.last_mut()?.children.push(element);
            }
            Event::End(_) => {
                let element = stack.pop()?;
                stack.last_mut()?.children.push(element);
            }
            Event::Text(text) => {
                let text = text.unescape().ok()?;
                stack.last_mut()?.text.push_str(&text);
            }
            Event::CData(data) => {
                let text = String::from_utf8_lossy(&data.into_inner()).into_owned();
                stack.last_mut()?.text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop()?;
    if !stack.is_empty() || document.children.len() != 1 {
        return None;
    }
    document.children.pop()
}

/// `root.child[1].leaf`: the first segment names the root element.
fn xml_at(root: &Element, path: &str) -> Option<String> {
    let segments = segments(path)?;
    let ((first, first_indexes), rest) = segments.split_first()?;
    if *first != root.name || first_indexes.iter().any(|&i| i != 0) {
        return None;
    }
    let mut here = root;
    for (name, indexes) in rest {
        let index = indexes.first().copied().unwrap_or(0);
        here = here
            .children
            .iter()
            .filter(|c| c.name == *name)
            .nth(index)?;
    }
    Some(here.text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(response_type: &str, attribute: &str) -> Webhook {
        Webhook::from_json(&format!(
            r#"{{"url":"https://e.com","request_type":"POST","response_type":"{response_type}",
               "response_mappings":[{{"attribute":"{attribute}","field":"f"}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn xml_paths_start_at_the_root() {
        let xml = "<r><a><b>1</b><b>two &amp; 3</b></a></r>";
        let map = |attr: &str| webhook("xml", attr).map_response(200, xml);
        assert_eq!(map("r.a.b[1]"), [("f".to_owned(), "two & 3".to_owned())]);
        assert_eq!(map("r.a.b"), [("f".to_owned(), "1".to_owned())]);
        assert!(map("a.b").is_empty());
        assert!(webhook("xml", "r.a").map_response(200, "<r><a>").is_empty());
    }

    #[test]
    fn json_paths_and_status() {
        let body = r#"{"a":[{"b":null},{"b":"x"}]}"#;
        assert_eq!(
            webhook("json", "a[1].b").map_response(299, body),
            [("f".to_owned(), "x".to_owned())]
        );
        assert!(webhook("json", "a[0].b").map_response(200, body).is_empty());
        assert!(webhook("json", "a[1].b").map_response(300, body).is_empty());
        assert!(webhook("json", "a[1].b")
            .map_response(200, "not json")
            .is_empty());
    }
}
