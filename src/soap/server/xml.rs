//! A strict, bounded XML 1.0 + Namespaces pull parser over a borrowed UTF-8
//! document, for SOAP envelopes.
//!
//! It builds no tree and allocates nothing per element: names and text are
//! slices of the input; text is copied only when it holds a reference or a
//! carriage return to rewrite. It checks what a conforming non-validating
//! parser checks (names, attribute syntax, matching end tags, one root,
//! references, characters, comments, namespace prefixes) and refuses a
//! DOCTYPE outright, so no entity can be declared, let alone expanded.
//!
//! Text is read as XML 1.0 requires: a raw CR LF pair or lone CR becomes
//! LF (§2.11) — also across a text/CDATA boundary — while `&#13;` stays CR.

use std::borrow::Cow;

use super::{MKTOWS_NS, SOAP_ENV_NS};

/// Most attributes on one element (a server limit, not XML's).
const MAX_ATTRIBUTES: usize = 64;

// Byte classes.
const NAME_START: u8 = 1;
const NAME: u8 = 2;
const SPECIAL: u8 = 4;
const LT: u8 = 8;
const SPACE: u8 = 16;
const NON_ASCII: u8 = 32;

/// The class of every byte: name characters (ASCII), text bytes that need a
/// closer look (`&`, CR, `]`, control characters, the lead byte of
/// U+FFFE/U+FFFF), `<`, XML white space, non-ASCII.
const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            k |= NAME_START | NAME;
        }
        if c.is_ascii_digit() || c == b'-' || c == b'.' {
            k |= NAME;
        }
        if (c < 0x20 && c != b'\t' && c != b'\n') || c == b'&' || c == b']' || c == 0xEF {
            k |= SPECIAL;
        }
        if c == b'<' {
            k |= LT;
        }
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
            k |= SPACE;
        }
        if c >= 0x80 {
            k |= NON_ASCII;
        }
        class[b] = k;
        b += 1;
    }
    class
};

fn is_space(b: u8) -> bool {
    CLASS[b as usize] & SPACE != 0
}

/// Whether any of eight bytes (little-endian in `v`) may end character data
/// or need a closer look: below 0x20 (tab and LF included), `&`, `<`, `]`,
/// or not ASCII.
fn needs_a_look(v: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0;
    below_space
        || v & HIGH != 0
        || has_zero(v ^ (ONES * u64::from(b'&')))
        || has_zero(v ^ (ONES * u64::from(b'<')))
        || has_zero(v ^ (ONES * u64::from(b']')))
}

/// Byte-wise equality of short slices, without a call to `memcmp`.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether `s` is XML white space only (possibly empty).
pub(crate) fn is_blank(s: &str) -> bool {
    s.bytes().all(is_space)
}

/// An XML 1.0 `Char`.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// The namespace of an element, as far as SOAP cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace (unqualified).
    None,
    /// SOAP 1.1's envelope namespace.
    Soap,
    /// Marketo's `http://www.marketo.com/mktows/`.
    Mktows,
    /// Any other.
    Other,
}

impl Ns {
    fn of(uri: &str) -> Ns {
        match uri {
            "" => Ns::None,
            SOAP_ENV_NS => Ns::Soap,
            MKTOWS_NS => Ns::Mktows,
            _ => Ns::Other,
        }
    }
}

/// An element's start tag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start<'a> {
    pub(crate) ns: Ns,
    pub(crate) local: &'a str,
    /// `<name/>`: there is no content and no end tag to read.
    pub(crate) empty: bool,
    /// The local part of an `xsi:type` attribute's value (any prefixed
    /// attribute named `type`), e.g. `LeadKeySelector`, as written.
    pub(crate) xsi_type: Option<&'a str>,
}

impl Start<'_> {
    /// Whether this is `local` in `ns`.
    pub(crate) fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

/// What the document holds next.
#[derive(Debug)]
enum Event<'a> {
    Start(Start<'a>),
    /// The end tag of the innermost open element.
    End,
    /// Character data as written (references not yet decoded);
    /// `special` when it holds a byte that needs decoding or checking.
    Text {
        raw: &'a str,
        special: bool,
    },
    /// A CDATA section's content.
    CData(&'a str),
    /// A comment or processing instruction.
    Misc,
    Eof,
}

/// Two texts read together.
pub(crate) type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Why reading stopped: the document is not well-formed (or over a limit),
/// or it is well-formed but not what the reader expects (text where
/// elements belong, an element where text belongs).
#[derive(Debug)]
pub(crate) enum Stop {
    /// Not well-formed XML, or over a limit.
    Xml(String),
    /// Well-formed, but text where only elements may be, or an element where
    /// only text may be: the message.
    Shape(String),
}

/// A namespace declaration in scope.
#[derive(Debug, Clone, Copy)]
struct Binding<'a> {
    /// `""` for the default namespace.
    prefix: &'a str,
    ns: Ns,
    /// The depth of the element that declares it (root: 1).
    depth: usize,
}

/// The pull parser.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    doc: &'a str,
    pos: usize,
    /// Qualified names of the open elements, outermost first.
    open: Vec<&'a str>,
    bindings: Vec<Binding<'a>>,
    /// Attribute names of the tag being read (reused).
    attributes: Vec<&'a str>,
    elements: usize,
    max_depth: usize,
    max_elements: usize,
    root_seen: bool,
}

impl<'a> Lexer<'a> {
    /// A parser over `doc`, refusing more than `max_depth` nested elements
    /// and more than `max_elements` elements.
    pub(crate) fn new(doc: &'a str, max_depth: usize, max_elements: usize) -> Self {
        let pos = if doc.starts_with('\u{FEFF}') { 3 } else { 0 };
        Lexer {
            doc,
            pos,
            open: Vec::with_capacity(8),
            bindings: Vec::with_capacity(4),
            attributes: Vec::new(),
            elements: 0,
            max_depth,
            max_elements,
            root_seen: false,
        }
    }

    /// How many elements are open.
    pub(crate) fn depth(&self) -> usize {
        self.open.len()
    }

    fn error<T>(&self, what: impl std::fmt::Display) -> Result<T, Stop> {
        Err(Stop::Xml(format!(
            "malformed XML at byte {}: {what}",
            self.pos
        )))
    }

    /// Reads the prolog and the root element's start tag.
    pub(crate) fn root(&mut self) -> Result<Start<'a>, Stop> {
        if self.doc[self.pos..].starts_with("<?xml")
            && self
                .doc
                .as_bytes()
                .get(self.pos + 5)
                .is_some_and(|&b| is_space(b))
        {
            self.declaration()?;
        }
        loop {
            match self.next()? {
                Event::Start(start) => return Ok(start),
                Event::Misc | Event::Text { .. } => {}
                Event::Eof => return self.error("no root element"),
                Event::End | Event::CData(_) => {
                    return self.error("content outside the root element")
                }
            }
        }
    }

    /// Reads the rest of the document after the root element: comments,
    /// processing instructions and white space only.
    pub(crate) fn finish(&mut self) -> Result<(), Stop> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Misc | Event::Text { .. } => {}
                Event::Start(_) | Event::End | Event::CData(_) => {
                    return self.error("content after the root element")
                }
            }
        }
    }

    /// The next child element of the element just opened (whose local name
    /// is `parent`), or `None` once its end tag is read. White space,
    /// comments and processing instructions are skipped; other text is
    /// refused (element-only content).
    pub(crate) fn next_child(&mut self, parent: &str) -> Result<Option<Start<'a>>, Stop> {
        loop {
            match self.next()? {
                Event::Start(start) => return Ok(Some(start)),
                Event::End => return Ok(None),
                Event::Misc => {}
                Event::Text { raw, special } => {
                    if !is_blank(raw) {
                        if special {
                            decode_text(raw).map_err(|e| self.bad_text(e))?;
                        }
                        return Err(Stop::Shape(format!("stray text in {parent}")));
                    }
                }
                Event::CData(raw) => {
                    check_cdata(raw).map_err(|e| self.bad_text(e))?;
                    if !is_blank(raw) {
                        return Err(Stop::Shape(format!("stray text in {parent}")));
                    }
                }
                Event::Eof => return self.error("the document ends inside an element"),
            }
        }
    }

    fn bad_text(&self, what: String) -> Stop {
        Stop::Xml(format!("malformed XML before byte {}: {what}", self.pos))
    }

    /// The text of `element`, just opened: its character data and CDATA
    /// sections, decoded and end-of-line normalised, up to its end tag. An
    /// element inside it is refused.
    pub(crate) fn text(&mut self, element: &Start<'a>) -> Result<Cow<'a, str>, Stop> {
        if element.empty {
            return Ok(Cow::Borrowed(""));
        }
        // Plain text, then the end tag: no events to go through.
        let (end, special) = self.text_at(self.pos);
        if let Some(after) = self.open.last().and_then(|name| self.close_at(end, name)) {
            let raw = &self.doc[self.pos..end];
            let text = if special {
                decode_text(raw).map_err(|e| self.bad_text(e))?
            } else {
                Cow::Borrowed(raw)
            };
            let depth = self.open.len();
            self.open.pop();
            self.unbind(depth);
            self.pos = after;
            return Ok(text);
        }
        let mut text = Text::default();
        loop {
            match self.next()? {
                Event::End => return Ok(text.value),
                Event::Text { raw, special } => {
                    let raw = text.adjacent(raw);
                    let piece = if special {
                        decode_text(raw).map_err(|e| self.bad_text(e))?
                    } else {
                        Cow::Borrowed(raw)
                    };
                    text.push(piece, raw.ends_with('\r'));
                }
                Event::CData(raw) => {
                    check_cdata(raw).map_err(|e| self.bad_text(e))?;
                    let raw = text.adjacent(raw);
                    text.push(normalize_eol(raw), raw.ends_with('\r'));
                }
                Event::Misc => text.after_cr = false,
                Event::Start(_) => {
                    return Err(Stop::Shape(format!("{} must hold text", element.local)))
                }
                Event::Eof => return self.error("the document ends inside an element"),
            }
        }
    }

    /// Reads and checks everything up to the end tag of the element open at
    /// `depth` (1 for the root), ignoring it.
    pub(crate) fn skip_to(&mut self, depth: usize) -> Result<(), Stop> {
        while self.open.len() >= depth {
            match self.next()? {
                Event::Text { raw, special: true } => {
                    decode_text(raw).map_err(|e| self.bad_text(e))?;
                }
                Event::CData(raw) => check_cdata(raw).map_err(|e| self.bad_text(e))?,
                Event::Eof => return self.error("the document ends inside an element"),
                _ => {}
            }
        }
        Ok(())
    }

    /// Skips the content of `element`, just opened.
    pub(crate) fn skip(&mut self, element: &Start<'a>) -> Result<(), Stop> {
        if element.empty {
            return Ok(());
        }
        self.skip_to(self.open.len())
    }

    /// Character data from `at` up to the next `<` (or the end): its end,
    /// and whether it holds a byte that needs decoding or checking.
    fn text_at(&self, at: usize) -> (usize, bool) {
        let bytes = self.doc.as_bytes();
        let mut special = 0;
        let mut i = at;
        loop {
            // Eight bytes at a time while none of them needs a look.
            while let Some(chunk) = bytes.get(i..i + 8) {
                match <[u8; 8]>::try_from(chunk) {
                    Ok(chunk) if !needs_a_look(u64::from_le_bytes(chunk)) => i += 8,
                    _ => break,
                }
            }
            let stop = (i + 8).min(bytes.len());
            while i < stop {
                let class = CLASS[bytes[i] as usize];
                if class & LT != 0 {
                    return (i, special & SPECIAL != 0);
                }
                special |= class;
                i += 1;
            }
            if i >= bytes.len() {
                return (i, special & SPECIAL != 0);
            }
        }
    }

    /// The position after `<name>` at `at`, if it is there.
    fn open_at(&self, at: usize, name: &str) -> Option<usize> {
        let rest = self.doc.as_bytes().get(at..)?;
        let end = name.len() + 2;
        (rest.len() >= end
            && rest[0] == b'<'
            && same(&rest[1..end - 1], name.as_bytes())
            && rest[end - 1] == b'>')
            .then_some(at + end)
    }

    /// The position after `</name>` at `at`, if it is there.
    fn close_at(&self, at: usize, name: &str) -> Option<usize> {
        let rest = self.doc.as_bytes().get(at..)?;
        let end = name.len() + 3;
        (rest.len() >= end
            && rest[0] == b'<'
            && rest[1] == b'/'
            && same(&rest[2..end - 1], name.as_bytes())
            && rest[end - 1] == b'>')
            .then_some(at + end)
    }

    /// Whether an unprefixed name is unqualified here (no default
    /// namespace in scope).
    fn unprefixed_is_unqualified(&self) -> bool {
        self.bindings
            .iter()
            .rev()
            .find(|b| b.prefix.is_empty())
            .is_none_or(|b| b.ns == Ns::None)
    }

    /// The fast lane for the shape lists repeat,
    /// `<outer><first>text</first><second>text</second></outer>` (white
    /// space allowed between the elements): both texts, once the whole
    /// shape is there, as written (no attributes, comments or CDATA);
    /// `None`, having read nothing, otherwise. It reads exactly what the
    /// general path would, within the same limits.
    pub(crate) fn leaf_pair(
        &mut self,
        outer: &str,
        first: &str,
        second: &str,
    ) -> Result<Option<Pair<'a>>, Stop> {
        if self.open.len() + 2 > self.max_depth
            || self.elements + 3 > self.max_elements
            || !self.unprefixed_is_unqualified()
        {
            return Ok(None);
        }
        let shape = || {
            let at = self.open_at(self.skip_space(self.pos), outer)?;
            let first_start = self.open_at(self.skip_space(at), first)?;
            let (first_end, first_special) = self.text_at(first_start);
            let at = self.close_at(first_end, first)?;
            let second_start = self.open_at(self.skip_space(at), second)?;
            let (second_end, second_special) = self.text_at(second_start);
            let at = self.close_at(second_end, second)?;
            let end = self.close_at(self.skip_space(at), outer)?;
            Some((
                (first_start, first_end, first_special),
                (second_start, second_end, second_special),
                end,
            ))
        };
        let Some((first, second, end)) = shape() else {
            return Ok(None);
        };
        let text = |(start, end, special): (usize, usize, bool)| {
            let raw = &self.doc[start..end];
            if special {
                decode_text(raw).map_err(|e| self.bad_text(e))
            } else {
                Ok(Cow::Borrowed(raw))
            }
        };
        let texts = (text(first)?, text(second)?);
        self.elements += 3;
        self.pos = end;
        Ok(Some(texts))
    }

    /// The next event.
    fn next(&mut self) -> Result<Event<'a>, Stop> {
        let bytes = self.doc.as_bytes();
        let start = self.pos;
        let Some(&first) = bytes.get(start) else {
            if !self.open.is_empty() {
                return self.error("the document ends inside an element");
            }
            return Ok(Event::Eof);
        };
        if first != b'<' {
            // Character data up to the next `<`.
            let (end, special) = self.text_at(start);
            self.pos = end;
            let raw = &self.doc[start..end];
            if self.open.is_empty() {
                if !is_blank(raw) {
                    return self.error("text outside the root element");
                }
                return Ok(Event::Misc);
            }
            return Ok(Event::Text { raw, special });
        }
        match bytes.get(start + 1) {
            Some(b'/') => self.end_tag(),
            Some(b'!') => {
                let rest = &self.doc[start..];
                if rest.starts_with("<!--") {
                    self.comment()
                } else if rest.starts_with("<![CDATA[") {
                    if self.open.is_empty() {
                        return self.error("CDATA outside the root element");
                    }
                    let body = start + 9;
                    let Some(len) = self.doc[body..].find("]]>") else {
                        return self.error("unterminated CDATA section");
                    };
                    self.pos = body + len + 3;
                    Ok(Event::CData(&self.doc[body..body + len]))
                } else if rest.starts_with("<!DOCTYPE") {
                    self.error("a DOCTYPE is not allowed")
                } else {
                    self.error("unexpected `<!`")
                }
            }
            Some(b'?') => self.processing_instruction(),
            _ => self.start_tag(),
        }
    }

    /// The end of a name starting at `at`, which must be one.
    fn name_end(&self, at: usize) -> Result<usize, Stop> {
        let bytes = self.doc.as_bytes();
        let mut i = at;
        // ASCII names (all of SOAP's) take the fast loop.
        match bytes.get(i) {
            Some(&b) if CLASS[b as usize] & NAME_START != 0 => i += 1,
            Some(&b) if CLASS[b as usize] & NON_ASCII != 0 => {}
            _ => return self.error("a name was expected"),
        }
        loop {
            while bytes.get(i).is_some_and(|&b| CLASS[b as usize] & NAME != 0) {
                i += 1;
            }
            match bytes.get(i) {
                Some(&b) if CLASS[b as usize] & NON_ASCII != 0 => {
                    let c = self.doc[i..].chars().next().unwrap_or('\0');
                    let ok = if i == at {
                        is_name_start_char(c)
                    } else {
                        is_name_char(c)
                    };
                    if !ok {
                        break;
                    }
                    i += c.len_utf8();
                }
                _ => break,
            }
        }
        if i == at {
            return self.error("a name was expected");
        }
        Ok(i)
    }

    fn skip_space(&self, mut at: usize) -> usize {
        let bytes = self.doc.as_bytes();
        while bytes.get(at).is_some_and(|&b| is_space(b)) {
            at += 1;
        }
        at
    }

    fn start_tag(&mut self) -> Result<Event<'a>, Stop> {
        if self.open.is_empty() && self.root_seen {
            return self.error("content after the root element");
        }
        self.root_seen = true;
        self.elements += 1;
        if self.elements > self.max_elements {
            return self.error("the document is too large");
        }
        let bytes = self.doc.as_bytes();
        let name_start = self.pos + 1;
        let name_end = self.name_end(name_start)?;
        let qname = &self.doc[name_start..name_end];
        let depth = self.open.len() + 1;
        let mut at = name_end;
        let mut prefixed_attributes = false;
        let mut xsi_type = None;
        self.attributes.clear();
        let empty = loop {
            let spaced = at;
            at = self.skip_space(at);
            match bytes.get(at) {
                Some(b'>') => {
                    at += 1;
                    break false;
                }
                Some(b'/') if bytes.get(at + 1) == Some(&b'>') => {
                    at += 2;
                    break true;
                }
                Some(_) if at > spaced => {
                    self.pos = at;
                    let name_end = self.name_end(at)?;
                    let name = &self.doc[at..name_end];
                    at = self.skip_space(name_end);
                    if bytes.get(at) != Some(&b'=') {
                        self.pos = at;
                        return self.error("`=` expected after an attribute name");
                    }
                    at = self.skip_space(at + 1);
                    let quote = match bytes.get(at) {
                        Some(&q @ (b'"' | b'\'')) => q,
                        _ => {
                            self.pos = at;
                            return self.error("a quoted attribute value was expected");
                        }
                    };
                    let value_start = at + 1;
                    let Some(len) = bytes[value_start..].iter().position(|&b| b == quote) else {
                        return self.error("unterminated attribute value");
                    };
                    let raw = &self.doc[value_start..value_start + len];
                    at = value_start + len + 1;
                    let value = decode_attribute(raw).map_err(|e| self.bad_text(e))?;
                    if self.attributes.contains(&name) {
                        return self.error(format!("attribute {name} given twice"));
                    }
                    if self.attributes.len() >= MAX_ATTRIBUTES {
                        return self.error("too many attributes");
                    }
                    self.attributes.push(name);
                    if name == "xmlns" {
                        self.declare("", &value, depth)?;
                    } else if let Some(prefix) = name.strip_prefix("xmlns:") {
                        self.declare(prefix, &value, depth)?;
                    } else if name.contains(':') {
                        prefixed_attributes = true;
                        if name.ends_with(":type") && !raw.contains('&') {
                            let value = raw.trim();
                            xsi_type = Some(value.rsplit(':').next().unwrap_or(value));
                        }
                    }
                }
                Some(_) => {
                    self.pos = at;
                    return self.error("white space, `>` or `/>` expected in a tag");
                }
                None => return self.error("unterminated tag"),
            }
        };
        self.pos = at;
        if prefixed_attributes {
            for i in 0..self.attributes.len() {
                let name = self.attributes[i];
                if let Some((prefix, _)) = name.split_once(':') {
                    if prefix != "xmlns" && prefix != "xml" {
                        self.resolve(name)?;
                    }
                }
            }
        }
        let (ns, local) = self.resolve(qname)?;
        if empty {
            self.unbind(depth);
        } else {
            if self.open.len() >= self.max_depth {
                return self.error("the document is too deep or too large");
            }
            self.open.push(qname);
        }
        Ok(Event::Start(Start {
            ns,
            local,
            empty,
            xsi_type,
        }))
    }

    /// Declares `prefix` (`""`: the default namespace) for the element at `depth`.
    fn declare(&mut self, prefix: &'a str, uri: &str, depth: usize) -> Result<(), Stop> {
        if prefix == "xmlns" || (prefix == "xml") != (uri == "http://www.w3.org/XML/1998/namespace")
        {
            return self.error(format!(
                "namespace prefix {prefix} cannot be bound to {uri:?}"
            ));
        }
        if uri == "http://www.w3.org/2000/xmlns/" {
            return self.error("the xmlns namespace cannot be declared");
        }
        if !prefix.is_empty() && (uri.is_empty() || prefix.contains(':')) {
            return self.error(format!("bad namespace declaration for prefix {prefix}"));
        }
        self.bindings.push(Binding {
            prefix,
            ns: Ns::of(uri),
            depth,
        });
        Ok(())
    }

    /// Drops the declarations made by the element at `depth`.
    fn unbind(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|b| b.depth >= depth) {
            self.bindings.pop();
        }
    }

    /// The namespace and local part of a qualified name.
    fn resolve(&self, qname: &'a str) -> Result<(Ns, &'a str), Stop> {
        let (prefix, local) = match qname.bytes().position(|b| b == b':') {
            None => ("", qname),
            Some(colon) => {
                let (prefix, local) = (&qname[..colon], &qname[colon + 1..]);
                if prefix.is_empty() || local.is_empty() || local.contains(':') {
                    return self.error(format!("bad qualified name {qname}"));
                }
                (prefix, local)
            }
        };
        if prefix == "xml" {
            return Ok((Ns::Other, local));
        }
        match self.bindings.iter().rev().find(|b| b.prefix == prefix) {
            Some(binding) => Ok((binding.ns, local)),
            None if prefix.is_empty() => Ok((Ns::None, local)),
            None => self.error(format!("undeclared namespace prefix {prefix:?}")),
        }
    }

    fn end_tag(&mut self) -> Result<Event<'a>, Stop> {
        if let Some(at) = self
            .open
            .last()
            .and_then(|name| self.close_at(self.pos, name))
        {
            let depth = self.open.len();
            self.open.pop();
            self.unbind(depth);
            self.pos = at;
            return Ok(Event::End);
        }
        let name_start = self.pos + 2;
        let name_end = self.name_end(name_start)?;
        let name = &self.doc[name_start..name_end];
        let at = self.skip_space(name_end);
        if self.doc.as_bytes().get(at) != Some(&b'>') {
            return self.error("`>` expected at the end of an end tag");
        }
        let depth = self.open.len();
        match self.open.pop() {
            Some(open) if open == name => {}
            Some(open) => return self.error(format!("end tag </{name}> does not match <{open}>")),
            None => return self.error(format!("end tag </{name}> without a start tag")),
        }
        self.unbind(depth);
        self.pos = at + 1;
        Ok(Event::End)
    }

    fn comment(&mut self) -> Result<Event<'a>, Stop> {
        let body = self.pos + 4;
        let Some(len) = self.doc[body..].find("--") else {
            return self.error("unterminated comment");
        };
        if self.doc.as_bytes().get(body + len + 2) != Some(&b'>') {
            return self.error("`--` inside a comment");
        }
        check_chars(&self.doc[body..body + len]).map_err(|e| self.bad_text(e))?;
        self.pos = body + len + 3;
        Ok(Event::Misc)
    }

    fn processing_instruction(&mut self) -> Result<Event<'a>, Stop> {
        let target_start = self.pos + 2;
        let target_end = self.name_end(target_start)?;
        if self.doc[target_start..target_end].eq_ignore_ascii_case("xml") {
            return self.error("an XML declaration is only allowed at the very start");
        }
        self.pi_body(target_end)
    }

    /// The rest of a processing instruction whose target ends at `at`.
    fn pi_body(&mut self, at: usize) -> Result<Event<'a>, Stop> {
        let Some(len) = self.doc[at..].find("?>") else {
            return self.error("unterminated processing instruction");
        };
        let body = &self.doc[at..at + len];
        if !body.is_empty() && !body.starts_with(|c: char| c.is_ascii() && is_space(c as u8)) {
            return self.error("white space expected after a processing instruction's target");
        }
        check_chars(body).map_err(|e| self.bad_text(e))?;
        self.pos = at + len + 2;
        Ok(Event::Misc)
    }

    /// `<?xml version="1.0" …?>` at the start.
    fn declaration(&mut self) -> Result<(), Stop> {
        let at = self.pos + 5;
        let Some(len) = self.doc[at..].find("?>") else {
            return self.error("unterminated XML declaration");
        };
        let body = self.doc[at..at + len].trim_start_matches([' ', '\t', '\r', '\n']);
        if !body.starts_with("version") {
            return self.error("the XML declaration must start with its version");
        }
        self.pos = at + len + 2;
        Ok(())
    }
}

/// Text being gathered from adjacent pieces (character data and CDATA
/// sections, possibly split by comments).
#[derive(Debug, Default)]
struct Text<'a> {
    value: Cow<'a, str>,
    /// The previous piece ended with a raw CR (already turned into LF), so
    /// a raw LF starting the next adjacent piece belongs to the same CR LF.
    after_cr: bool,
}

impl<'a> Text<'a> {
    /// `raw` without the LF that completes a CR LF split across pieces.
    fn adjacent(&mut self, raw: &'a str) -> &'a str {
        if std::mem::take(&mut self.after_cr) {
            raw.strip_prefix('\n').unwrap_or(raw)
        } else {
            raw
        }
    }

    fn push(&mut self, piece: Cow<'a, str>, ends_with_cr: bool) {
        self.after_cr = ends_with_cr;
        if self.value.is_empty() {
            self.value = piece;
        } else if !piece.is_empty() {
            self.value.to_mut().push_str(&piece);
        }
    }
}

/// Character data as read: references decoded, CR LF and lone CR turned
/// into LF, characters checked.
pub(crate) fn decode_text(raw: &str) -> Result<Cow<'_, str>, String> {
    decode(raw, false)
}

/// An attribute value as read: references decoded, white space characters
/// written raw turned into spaces (XML 1.0 §3.3.3), `<` refused.
fn decode_attribute(raw: &str) -> Result<Cow<'_, str>, String> {
    decode(raw, true)
}

/// A CDATA section's content: characters checked (its end-of-line
/// normalisation is [`normalize_eol`]).
fn check_cdata(raw: &str) -> Result<(), String> {
    check_chars(raw)
}

/// Refuses characters outside XML 1.0's `Char`.
fn check_chars(raw: &str) -> Result<(), String> {
    if !raw.bytes().any(|b| CLASS[b as usize] & SPECIAL != 0) {
        return Ok(());
    }
    match raw.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        )),
        None => Ok(()),
    }
}

/// CR LF and lone CR as LF.
fn normalize_eol(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\r') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
}

fn decode(raw: &str, attribute: bool) -> Result<Cow<'_, str>, String> {
    let bytes = raw.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let replacement = match b {
            b'&' => {
                let (c, next) = reference(raw, i)?;
                Some((c, next))
            }
            b'\r' => {
                let next = if bytes.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                Some((if attribute { ' ' } else { '\n' }, next))
            }
            b'\t' | b'\n' if attribute => Some((' ', i + 1)),
            b'<' if attribute => return Err("`<` in an attribute value".into()),
            b']' if !attribute && raw[i..].starts_with("]]>") => return Err("`]]>` in text".into()),
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                return Err("character U+FFFE or U+FFFF is not allowed in XML".into())
            }
            b if b < 0x20 && b != b'\t' && b != b'\n' => {
                return Err(format!("character U+{b:04X} is not allowed in XML"))
            }
            _ => None,
        };
        match replacement {
            Some((c, next)) => {
                let out = out.get_or_insert_with(|| String::with_capacity(raw.len()));
                out.push_str(&raw[copied..i]);
                out.push(c);
                i = next;
                copied = next;
            }
            None => i += 1,
        }
    }
    Ok(match out {
        None => Cow::Borrowed(raw),
        Some(mut out) => {
            out.push_str(&raw[copied..]);
            Cow::Owned(out)
        }
    })
}

/// The character a reference at `at` (`&…;`) stands for, and where the
/// text goes on after it. Only the five predefined entities and character
/// references exist: there is no DOCTYPE to declare others.
fn reference(raw: &str, at: usize) -> Result<(char, usize), String> {
    let rest = &raw[at + 1..];
    let Some(len) = rest.bytes().take(32).position(|b| b == b';') else {
        return Err("`&` that starts no reference (write it as &amp;)".into());
    };
    let name = &rest[..len];
    let next = at + 1 + len + 1;
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
            } else if let Some(dec) = name.strip_prefix('#') {
                (!dec.is_empty() && dec.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| dec.parse::<u32>().ok())
                    .flatten()
            } else {
                return Err(format!("undeclared entity &{name};"));
            };
            match code.and_then(char::from_u32).filter(|&c| is_xml_char(c)) {
                Some(c) => c,
                None => return Err(format!("bad character reference &{name};")),
            }
        }
    };
    Ok((c, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(doc: &str) -> Result<String, Stop> {
        let mut lexer = Lexer::new(doc, 16, 1000);
        let root = lexer.root()?;
        let text = lexer.text(&root)?.into_owned();
        lexer.finish()?;
        Ok(text)
    }

    fn xml_error(doc: &str) -> String {
        match text_of(doc) {
            Err(Stop::Xml(e)) => e,
            other => panic!("{doc:?}: {other:?}"),
        }
    }

    #[test]
    fn end_of_line_handling_follows_xml_1_0() {
        let cases = [
            ("<a>a\r\nb</a>", "a\nb"),
            ("<a>a\rb</a>", "a\nb"),
            ("<a>a\r\rb\r</a>", "a\n\nb\n"),
            ("<a>a&#13;b</a>", "a\rb"),
            ("<a>a&#13;&#10;b</a>", "a\r\nb"),
            ("<a>a&#xD;\nb</a>", "a\r\nb"),
            ("<a><![CDATA[a\r\nb]]></a>", "a\nb"),
            // A CR LF pair split by the start of a CDATA section is one pair.
            ("<a>a\r<![CDATA[\nb]]></a>", "a\nb"),
            ("<a><![CDATA[a\r]]>\nb</a>", "a\nb"),
            // A comment between them: two line ends.
            ("<a>a\r<!-- c -->\nb</a>", "a\n\nb"),
            (
                "<a>&amp;&lt;&gt;&quot;&apos;&#x1F600;&#233;</a>",
                "&<>\"'😀é",
            ),
            ("<a>x<!--c-->y<?p q?>z</a>", "xyz"),
            ("<a/>", ""),
            ("<a></a>", ""),
        ];
        for (doc, expected) in cases {
            assert_eq!(
                text_of(doc).unwrap_or_else(|e| panic!("{doc:?}: {e:?}")),
                expected,
                "{doc:?}"
            );
        }
    }

    #[test]
    fn clean_text_is_borrowed() {
        let doc = "<a>plain text</a>";
        let mut lexer = Lexer::new(doc, 16, 10);
        let root = lexer.root().unwrap();
        assert!(matches!(
            lexer.text(&root).unwrap(),
            Cow::Borrowed("plain text")
        ));
    }

    #[test]
    fn what_a_conforming_parser_refuses_is_refused() {
        for doc in [
            "",
            "   ",
            "<a>",
            "<a></b>",
            "<a></a><b/>",
            "<a/>text",
            "text<a/>",
            "<a>&lol;</a>",
            "<a>&amp</a>",
            "<a>& b</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>&#x110000;</a>",
            "<a>&#99999999999;</a>",
            "<a>&#X41;</a>",
            "<a>\u{1}</a>",
            "<a>\u{FFFE}</a>",
            "<a>]]></a>",
            "<a><!-- a -- b --></a>",
            "<a><!-- a ---></a>",
            "<a><![CDATA[x</a>",
            "<a x='1' x='2'/>",
            "<a x='1'y='2'/>",
            "<a x=1/>",
            "<a x='<'/>",
            "<a x='&nope;'/>",
            "<p:a/>",
            "<a p:x='1'/>",
            "<a xmlns:p=''/>",
            "<a xmlns:xmlns='u'/>",
            "<:a/>",
            "<a:/>",
            "<a:b:c xmlns:a='u'/>",
            "<1a/>",
            "<a>< b/></a>",
            "</a>",
            "<?xml version='1.0'?><?xml version='1.0'?><a/>",
            "<a/><?xml version='1.0'?>",
            "<!DOCTYPE a><a/>",
            "<a><!DOCTYPE a></a>",
            "<a><!ELEMENT a></a>",
            "<![CDATA[x]]><a/>",
            "<?xml encoding='UTF-8'?><a/>",
        ] {
            let _ = xml_error(doc);
        }
    }

    #[test]
    fn well_formed_oddities_are_read() {
        for doc in [
            "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- c --><?pi x?>\n<a  >t</a >\n<!---->",
            "<a xmlns='u' xmlns:p=\"v\" p:x='1' xml:lang='en'>t</a>",
            "<é:ü xmlns:é='u'>t</é:ü>",
            "<a x='&lt;&#x9;\t'>t</a>",
        ] {
            assert_eq!(text_of(doc).unwrap_or_else(|e| panic!("{doc:?}: {e:?}")), "t");
        }
    }

    #[test]
    fn namespaces_resolve_by_scope() {
        let doc = format!(
            "<e:Envelope xmlns:e='{SOAP_ENV_NS}'><e:Body xmlns='{MKTOWS_NS}'><x/><y xmlns=''/><m:z xmlns:m='{MKTOWS_NS}'/><w/></e:Body></e:Envelope>"
        );
        let mut lexer = Lexer::new(&doc, 16, 100);
        let root = lexer.root().unwrap();
        assert!(root.is(Ns::Soap, "Envelope"));
        let body = lexer.next_child("Envelope").unwrap().unwrap();
        assert!(body.is(Ns::Soap, "Body"));
        let mut seen = Vec::new();
        while let Some(child) = lexer.next_child("Body").unwrap() {
            seen.push((child.ns, child.local));
            lexer.skip(&child).unwrap();
        }
        assert_eq!(
            seen,
            [
                (Ns::Mktows, "x"),
                (Ns::None, "y"),
                (Ns::Mktows, "z"),
                (Ns::Mktows, "w")
            ]
        );
        assert!(lexer.next_child("Envelope").unwrap().is_none());
        lexer.finish().unwrap();
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}{}", "<a>".repeat(17), "</a>".repeat(17));
        assert!(xml_error_with(&deep, 16, 100).contains("too deep"));
        let wide = format!("<a>{}</a>", "<b/>".repeat(100));
        assert!(xml_error_with(&wide, 16, 100).contains("too large"));
    }

    fn xml_error_with(doc: &str, depth: usize, elements: usize) -> String {
        let mut lexer = Lexer::new(doc, depth, elements);
        let result = lexer.root().and_then(|root| lexer.skip(&root));
        match result {
            Err(Stop::Xml(e)) => e,
            other => panic!("{other:?}"),
        }
    }
}
