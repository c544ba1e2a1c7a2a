//! The sandbox's own HTTP/1.1 wire layer: request framing in, answers out.
//!
//! The sandbox owns its sockets (rather than leaving them to an HTTP server
//! crate) so that faults can act below HTTP: refuse connections, close one
//! after reading a request, or cut an answer short. This module only reads
//! and writes bytes; [`super::net`] runs the connections.
//!
//! It reads what HTTP/1.1 clients send: a request line, header fields,
//! and a body framed by `Content-Length` or `Transfer-Encoding: chunked`,
//! answering `100 Continue` to `Expect: 100-continue`. Keep-alive follows
//! the HTTP version and the `Connection` header; requests pipelined on one
//! connection are read and answered in turn. Every read is bounded.

use std::io::{self, BufRead, Read, Write};

/// Longest request head (request line and header fields) read.
const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Most header fields in a request.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line or trailer line of a chunked body.
const MAX_CHUNK_LINE: u64 = 4096;

/// An HTTP version the sandbox speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// HTTP/1.0: one request per connection unless the client asks for
    /// keep-alive.
    Http10,
    /// HTTP/1.1: keep-alive unless the client says `Connection: close`.
    Http11,
}

/// A request's line and header fields, before its body is read.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) method: String,
    /// The request target as sent: path and query.
    pub(crate) target: String,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, String)>,
}

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 without the header).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a request could not be read. Any of these ends the connection.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed or closed mid-request: nothing to answer.
    Io(io::Error),
    /// The request is malformed: answer this status and text, then close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(err: io::Error) -> Self {
        ReadError::Io(err)
    }
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The path, without the query.
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// Whether the `Connection` header lists `token`.
    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case("Connection"))
            .flat_map(|(_, value)| value.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client wants the connection kept open after the answer.
    pub(crate) fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection_has("close"),
            Version::Http10 => self.connection_has("keep-alive"),
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub(crate) fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .header("Expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// The body's framing, or why it cannot be trusted (a request
    /// smuggling shape, an unknown coding, a bad length).
    pub(crate) fn framing(&self) -> Result<Framing, ReadError> {
        let mut codings = self
            .headers
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case("Transfer-Encoding"))
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .peekable();
        let chunked = if codings.peek().is_some() {
            let codings: Vec<&str> = codings.collect();
            if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
                return Err(ReadError::Bad(
                    501,
                    "only the chunked transfer coding is supported",
                ));
            }
            true
        } else {
            false
        };
        let mut length: Option<u64> = None;
        for (_, value) in self
            .headers
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case("Content-Length"))
        {
            for item in value.split(',') {
                let item = item.trim();
                if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ReadError::Bad(400, "bad Content-Length"));
                }
                let n: u64 = item
                    .parse()
                    .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ReadError::Bad(400, "conflicting Content-Length values"));
                }
                length = Some(n);
            }
        }
        match (chunked, length) {
            (true, Some(_)) => Err(ReadError::Bad(
                400,
                "both Content-Length and Transfer-Encoding",
            )),
            (true, None) => Ok(Framing::Chunked),
            (false, length) => Ok(Framing::Length(length.unwrap_or(0))),
        }
    }
}

/// Reads one line ending in LF, at most `max` bytes, without the line end.
/// `Ok(None)` on a clean end of stream before any byte.
fn read_line<R: BufRead>(reader: &mut R, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let read = reader.by_ref().take(max).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() as u64 >= max {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// A header field name: an HTTP token.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads a request head. `Ok(None)` when the client closed the connection
/// cleanly between requests.
pub(crate) fn read_head<R: BufRead>(reader: &mut R) -> Result<Option<Head>, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    // Empty lines before a request line are ignored (RFC 9112, 2.2).
    let line = loop {
        let Some(line) = read_line(reader, budget)? else {
            return Ok(None);
        };
        budget = budget.saturating_sub(line.len() as u64 + 2);
        if !line.is_empty() {
            break line;
        }
        if budget == 0 {
            return Err(ReadError::Bad(400, "no request line"));
        }
    };
    let line = String::from_utf8(line).map_err(|_| ReadError::Bad(400, "bad request line"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "bad request line"));
    };
    if !is_token(method) || target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ReadError::Bad(400, "bad request line"));
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.starts_with("HTTP/") => {
            return Err(ReadError::Bad(505, "HTTP version not supported"))
        }
        _ => return Err(ReadError::Bad(400, "bad request line")),
    };
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader, budget.max(1))? else {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        };
        budget = budget.saturating_sub(line.len() as u64 + 2);
        if line.is_empty() {
            break;
        }
        if budget == 0 {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ReadError::Bad(431, "too many header fields"));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ReadError::Bad(400, "obsolete header line folding"));
        }
        let line = String::from_utf8_lossy(&line);
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "bad header field"));
        };
        if !is_token(name) {
            return Err(ReadError::Bad(400, "bad header field name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Some(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        version,
        headers,
    }))
}

/// Reads a body framed as `framing`, at most `max` bytes.
pub(crate) fn read_body<R: BufRead>(
    reader: &mut R,
    framing: Framing,
    max: u64,
) -> Result<Vec<u8>, ReadError> {
    let too_large = ReadError::Bad(413, "request too large");
    match framing {
        Framing::Length(length) => {
            if length > max {
                return Err(too_large);
            }
            let mut body = Vec::with_capacity(usize::try_from(length.min(64 * 1024)).unwrap_or(0));
            let read = reader.by_ref().take(length).read_to_end(&mut body)?;
            if (read as u64) < length {
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(body)
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                let line = read_line(reader, MAX_CHUNK_LINE)?
                    .ok_or_else(|| ReadError::Io(io::ErrorKind::UnexpectedEof.into()))?;
                let line = String::from_utf8_lossy(&line);
                let size = line.split(';').next().unwrap_or_default().trim();
                if size.is_empty() || size.len() > 16 {
                    return Err(ReadError::Bad(400, "bad chunk size"));
                }
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
                if size == 0 {
                    // Trailer fields, then an empty line.
                    for _ in 0..MAX_HEADERS {
                        let line = read_line(reader, MAX_CHUNK_LINE)?
                            .ok_or_else(|| ReadError::Io(io::ErrorKind::UnexpectedEof.into()))?;
                        if line.is_empty() {
                            return Ok(body);
                        }
                    }
                    return Err(ReadError::Bad(431, "too many trailer fields"));
                }
                if (body.len() as u64).saturating_add(size) > max {
                    return Err(too_large);
                }
                let read = reader.by_ref().take(size).read_to_end(&mut body)?;
                if (read as u64) < size {
                    return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                match read_line(reader, MAX_CHUNK_LINE)? {
                    Some(rest) if rest.is_empty() => {}
                    Some(_) => return Err(ReadError::Bad(400, "bad chunk")),
                    None => return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
                }
            }
        }
    }
}

/// Writes `100 Continue`.
pub(crate) fn write_continue<W: Write>(writer: &mut W) -> io::Result<()> {
    writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    writer.flush()
}

/// The reason phrase of a status.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// An answer: status, content type (none when empty) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    /// Other header fields (e.g. `Retry-After`).
    pub(crate) headers: Vec<(String, String)>,
}

impl Answer {
    /// An answer with a body.
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Answer {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// The same answer with one more header field.
    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// An answer without a body or content type.
    pub(crate) fn empty(status: u16) -> Self {
        Answer {
            status,
            content_type: String::new(),
            body: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Whether this status never carries a body (1xx, 204, 304).
    fn bodiless(&self) -> bool {
        self.status < 200 || self.status == 204 || self.status == 304
    }

    /// The status line and header fields, for a request of `version`.
    /// `length` is the `Content-Length` announced, which faults may set
    /// larger than the body sent.
    pub(crate) fn head(&self, version: Version, keep_alive: bool, length: usize) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.bodiless() {
            if !self.content_type.is_empty() {
                head.push_str("Content-Type: ");
                head.push_str(&self.content_type);
                head.push_str("\r\n");
            }
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        match (keep_alive, version) {
            (false, _) => head.push_str("Connection: close\r\n"),
            (true, Version::Http10) => head.push_str("Connection: keep-alive\r\n"),
            (true, Version::Http11) => {}
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The whole answer on the wire: head and (unless `head_only`, for
    /// `HEAD` requests) body.
    pub(crate) fn to_bytes(&self, version: Version, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let body: &[u8] = if self.bodiless() { &[] } else { &self.body };
        let mut bytes = self.head(version, keep_alive, body.len());
        if !head_only {
            bytes.extend_from_slice(body);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn head_of(raw: &str) -> Result<Option<Head>, ReadError> {
        read_head(&mut BufReader::new(raw.as_bytes()))
    }

    #[test]
    fn reads_pipelined_requests_in_turn() {
        let raw = "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
                   GET /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;ext\r\nhi\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n\
                   \r\nGET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let mut reader = BufReader::new(raw.as_bytes());
        let a = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.path(), a.target.as_str()),
            ("POST", "/a", "/a?x=1")
        );
        assert_eq!(a.header("host"), Some("h"));
        assert!(a.keep_alive());
        let body = read_body(&mut reader, a.framing().unwrap(), 100).unwrap();
        assert_eq!(body, b"abc");
        let b = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(b.framing().unwrap(), Framing::Chunked);
        assert_eq!(
            read_body(&mut reader, Framing::Chunked, 100).unwrap(),
            b"hi!"
        );
        let c = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(c.version, Version::Http10);
        assert!(c.keep_alive());
        assert_eq!(c.framing().unwrap(), Framing::Length(0));
        assert!(read_head(&mut reader).unwrap().is_none());
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        let bad = |raw: &str| match head_of(raw) {
            Err(ReadError::Bad(status, _)) => status,
            Ok(Some(head)) => match head.framing() {
                Err(ReadError::Bad(status, _)) => status,
                other => panic!("{raw:?} framed: {other:?}"),
            },
            other => panic!("{raw:?} read: {other:?}"),
        };
        assert_eq!(bad("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(bad("GET /\r\n\r\n"), 400);
        assert_eq!(bad("GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(bad("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
        assert_eq!(bad("GET / HTTP/1.1\r\nA: x\r\n folded\r\n\r\n"), 400);
        assert_eq!(
            bad("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            bad("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            bad("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        let long = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "x".repeat(70_000));
        assert_eq!(bad(&long), 431);
        let many: String = (0..200).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(bad(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
    }

    #[test]
    fn bounded_bodies() {
        let mut reader = BufReader::new(&b"0123456789"[..]);
        assert!(matches!(
            read_body(&mut reader, Framing::Length(10), 5),
            Err(ReadError::Bad(413, _))
        ));
        let mut reader = BufReader::new(&b"abc"[..]);
        assert!(matches!(
            read_body(&mut reader, Framing::Length(10), 50),
            Err(ReadError::Io(_))
        ));
        let mut reader = BufReader::new(&b"ffffffffffffffffff\r\n"[..]);
        assert!(matches!(
            read_body(&mut reader, Framing::Chunked, 50),
            Err(ReadError::Bad(400, _))
        ));
        let mut reader = BufReader::new(&b"40\r\n"[..]);
        assert!(matches!(
            read_body(&mut reader, Framing::Chunked, 50),
            Err(ReadError::Bad(413, _))
        ));
        let mut reader = BufReader::new(&b"2\r\nabX\r\n"[..]);
        assert!(matches!(
            read_body(&mut reader, Framing::Chunked, 50),
            Err(ReadError::Bad(400, _))
        ));
    }

    proptest::proptest! {
        /// Whatever arrives, reading requests ends without panicking, and
        /// every body read respects the bound.
        #[test]
        fn any_bytes_are_read_or_refused(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                         prefix in proptest::sample::select(vec![
                                             "", "POST / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                                             "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                                         ])) {
            let input = [prefix.as_bytes(), &raw].concat();
            let mut reader = BufReader::new(&input[..]);
            for _ in 0..8 {
                let Ok(Some(head)) = read_head(&mut reader) else { break };
                let _ = head.keep_alive();
                let _ = head.expects_continue();
                let Ok(framing) = head.framing() else { break };
                match read_body(&mut reader, framing, 64) {
                    Ok(body) => proptest::prop_assert!(body.len() <= 64),
                    Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn answers() {
        let ok = Answer::new(200, "text/plain", "hi");
        assert_eq!(
            ok.to_bytes(Version::Http11, true, false),
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert_eq!(
            ok.to_bytes(Version::Http10, true, true),
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n"
        );
        assert_eq!(
            Answer::new(204, "text/plain", "x").to_bytes(Version::Http11, false, false),
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        );
    }
}
