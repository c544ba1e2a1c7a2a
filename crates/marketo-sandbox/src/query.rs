//! Query strings and form bodies: a small percent-decoder and a parameter list.

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX`
/// is the byte `XX`. A `%` not followed by two hex digits is kept as is;
/// bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decoded `name=value` pairs, in order; a name may repeat.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b=x+y&c` (`c` has the empty value).
    pub(crate) fn parse(query: &str) -> Self {
        let mut params = Params::default();
        params.extend(query);
        params
    }

    /// The query string of a request target (`/path?query`).
    pub(crate) fn from_url(url: &str) -> Self {
        Params::parse(url.split_once('?').map(|(_, q)| q).unwrap_or_default())
    }

    /// Adds the pairs of another query string or form body.
    pub(crate) fn extend(&mut self, query: &str) {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            self.0.push((percent_decode(name), percent_decode(value)));
        }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every item of `name`: each occurrence's value split at commas, empty
    /// items dropped (`name=a,b&name=c` gives `a`, `b`, `c`). `None` when the
    /// parameter is absent or holds no item.
    pub(crate) fn list(&self, name: &str) -> Option<Vec<&str>> {
        let items: Vec<&str> = self
            .0
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .filter(|item| !item.is_empty())
            .collect();
        (!items.is_empty()).then_some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("a+b%20c%2Cd%26"), "a b c,d&");
        assert_eq!(percent_decode("%e4%b8%ad"), "中");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff"), "\u{FFFD}");
    }

    #[test]
    fn lists_split_at_commas_and_merge_repeats() {
        let params = Params::parse("name=a%2Cb&x&name=c,,&name=");
        assert_eq!(params.list("name"), Some(vec!["a", "b", "c"]));
        assert_eq!(params.get("x"), Some(""));
        assert_eq!(params.list("x"), None);
        assert_eq!(params.list("y"), None);
    }
}
