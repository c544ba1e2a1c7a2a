//! What the workspace's tests share: property-test scaffolding
//! (hostile-string generators, the XML model's character rules, byte-level
//! document mutation), plain HTTP calls ([`http`]), secrets never shown
//! ([`secrets`]), and the benches' paired timing (`paired`, feature `bench`).
//!
//! A dev-only member of the workspace (never published): the tests of the
//! library, the sandbox, the bridge and the command line use it. It
//! depends on `proptest`, `ureq`, `log`, `serde_json` (and
//! `criterion` for `bench`) only, nothing of the workspace.

pub mod http;
#[cfg(feature = "bench")]
pub mod paired;
pub mod redis_server;
pub mod secrets;

/// A `marketo_campaign` client of `$builder` that neither paces nor
/// retries, and waits `$timeout` per call (the caller depends on
/// `marketo_campaign`; this crate does not).
#[macro_export]
macro_rules! quiet_client {
    ($builder:expr, $timeout:expr) => {
        $builder
            .rate_limit(None)
            .retry(::marketo_campaign::RetryPolicy::never())
            .timeout($timeout)
            .build()
            .unwrap()
    };
}

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Characters and fragments that break naive XML and JSON writers and
/// readers (the union of what each suite used to list on its own).
pub const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "&",
    "\"",
    "'",
    "\\",
    "]]>",
    "<![CDATA[x]]>",
    "</keyValue><keyValue>",
    "</keyValue></leadKey><leadKey><keyType>IDNUM</keyType><keyValue>1",
    "</keyValue></leadKey><leadKey><keyType>IDNUM</keyType><keyValue>1002201",
    "</value></attrib><attrib><name>{{my.X}}</name><value>",
    "</faultstring>",
    "</script>",
    "<!DOCTYPE x>",
    "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
    "<!ENTITY lol \"lol\">",
    "&lol;",
    "&amp;",
    "&#13;",
    "&#x0;",
    "<?xml version=\"1.0\"?>",
    "<!-- c -->",
    "<&>'",
    "\",\"value\":\"",
    "]}",
    "\\u0000",
    " - ",
    "(20014)",
    "\r\n",
    "\r",
    "\n",
    "\t",
    " ",
    "\u{0}",
    "\u{1}",
    "\u{8}",
    "\u{B}",
    "\u{C}",
    "\u{1F}",
    "\u{7F}",
    "\u{85}",
    "\u{A0}",
    "\u{2028}",
    "\u{2029}",
    "\u{D7FF}",
    "\u{E000}",
    "\u{FFFD}",
    "\u{FFFE}",
    "\u{FFFF}",
    "\u{10000}",
    "\u{10FFFF}",
    "\u{1F600}",
    "é",
    ",",
    "%",
    "%2C",
    "+",
    "=",
    "?",
    "#",
    "{{my.",
    "}}",
    "{",
    "}",
];

/// One piece of a hostile string: a fragment, any character, or a word.
pub fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
        2 => any::<char>().prop_map(String::from),
        3 => "[a-zA-Z0-9 @._-]{1,10}",
    ]
}

/// A piece that XML 1.0 can carry as text.
pub fn xml_piece() -> impl Strategy<Value = String> {
    piece().prop_filter("XML Char", |p| xml_text(p))
}

/// Short hostile strings, and now and then one of 10,000 characters.
pub fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => vec(piece(), 0..10).prop_map(|p| p.concat()),
        1 => vec(piece(), 1..5).prop_map(|p| long(&p.concat())),
    ]
}

/// `unit` repeated to at least 10,000 characters.
pub fn long(unit: &str) -> String {
    let unit = if unit.is_empty() { "x" } else { unit };
    unit.repeat(10_000_usize.div_ceil(unit.chars().count()))
}

/// Token names: mostly `{{my.<hostile>}}`, sometimes any hostile string.
pub fn token_name() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => hostile().prop_map(|inner| format!("{{{{my.{inner}}}}}")),
        1 => hostile(),
    ]
}

/// An XML 1.0 `Char`.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Only XML 1.0 `Char`s.
pub fn xml_text(s: &str) -> bool {
    s.chars().all(is_xml_char)
}

/// The model of a campaign or program name: non-blank XML text.
pub fn name_ok(name: &str) -> bool {
    !name.trim().is_empty() && xml_text(name)
}

/// The model of a token name's shape: `{{my.Name}}`, `Name` non-blank,
/// without braces or control characters.
pub fn token_shape_ok(name: &str) -> bool {
    name.strip_prefix("{{my.")
        .and_then(|rest| rest.strip_suffix("}}"))
        .is_some_and(|inner| {
            !inner.trim().is_empty()
                && !inner.contains(['{', '}'])
                && !inner.chars().any(char::is_control)
        })
}

/// A billion-laughs document: a DOCTYPE of nine nested entity levels,
/// padded with a comment of `padding` bytes, then `root`.
pub fn entity_bomb(padding: usize, root: &str) -> String {
    let mut doc = String::from(r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#);
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        doc.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    doc.push_str("<!-- ");
    doc.push_str(&"x".repeat(padding));
    doc.push_str(" -->]>");
    doc.push_str(root);
    doc
}

/// Fragments spliced into XML documents by [`mutate`].
pub const XML_SPLICES: &[&[u8]] = &[
    b"<",
    b">",
    b"</a>",
    b"<a>",
    b"<a/>",
    b"&lol;",
    b"&#0;",
    b"&#xD800;",
    b"<!DOCTYPE x>",
    b"<![CDATA[",
    b"<![CDATA[true]]>",
    b"]]>",
    b"<?pi?>",
    b"xmlns:ns1=\"urn:x\"",
    b"xmlns:x=\"urn:y\"",
    b"ns9:",
    b"\xff",
    b"\xff\xfe",
    b"\xc3",
    b"<leadKey><keyType>IDNUM</keyType><keyValue>1002200</keyValue></leadKey>",
    b"<campaignId>1234</campaignId>",
    b"<programTokenList/>",
    b"<success>true</success>",
    b"<SOAP-ENV:Fault>",
    b"<result>",
    b"</result>",
    b"<code>20016</code>",
];

/// One edit of a document: 0 flips a byte, 1 deletes a range, 2
/// duplicates a range, 3 inserts bytes, 4 splices a fragment.
pub type Edit = (u8, Index, Index, Vec<u8>);

/// One to five edits.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    vec(
        (
            0u8..5,
            any::<Index>(),
            any::<Index>(),
            vec(any::<u8>(), 0..8),
        ),
        1..6,
    )
}

/// Applies `edits` to `doc`: ranges are shorter than `max_range` bytes,
/// spliced fragments come from `splices`.
pub fn mutate(doc: &mut Vec<u8>, edits: &[Edit], splices: &[&[u8]], max_range: usize) {
    for (kind, at, len, bytes) in edits {
        let at = at.index(doc.len() + 1);
        let end = (at + len.index(max_range)).min(doc.len());
        match kind % 5 {
            0 if at < doc.len() => doc[at] ^= bytes.first().copied().unwrap_or(0x20) | 1,
            1 => {
                doc.drain(at..end);
            }
            2 => {
                let copy = doc[at..end].to_vec();
                doc.splice(at..at, copy);
            }
            3 => {
                doc.splice(at..at, bytes.iter().copied());
            }
            _ => {
                let fragment = splices[len.index(splices.len())];
                doc.splice(at..at, fragment.iter().copied());
            }
        }
    }
}
