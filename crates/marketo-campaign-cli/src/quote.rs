//! User input quoted in error messages: whole when short, else a short
//! prefix and the input's length, so that a refused megabyte is not printed
//! back (a leads file's line, an argument, a line of a record).

use std::borrow::Cow;

/// Longest part of an input quoted in an error message, in characters (as
/// the library's own errors quote lead keys and token names).
const SHOWN_CHARS: usize = 64;

/// `text` as an error message quotes it: `"text"` when short, else
/// `"its first 64 characters"… (1000000 characters)`.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

/// `text` cut as [`quoted`] cuts it, without the quotes (for messages that
/// quote it their own way, as clap's do).
fn cut(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!(
            "{}… ({} characters)",
            &text[..cut],
            text.chars().count()
        )),
    }
}

/// Whether [`quoted`] and [`cut`] cut `text`.
fn is_long(text: &str) -> bool {
    text.chars().nth(SHOWN_CHARS).is_some()
}

/// A command-line parsing error with the values it quotes (an invalid
/// value, an unknown argument) cut.
pub(crate) fn clap_error(mut error: clap::Error) -> clap::Error {
    use clap::error::ContextValue;
    let long: Vec<_> = error
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(text) if is_long(text) => {
                Some((kind, ContextValue::String(cut(text).into_owned())))
            }
            ContextValue::Strings(texts) if texts.iter().any(|t| is_long(t)) => Some((
                kind,
                ContextValue::Strings(texts.iter().map(|t| cut(t).into_owned()).collect()),
            )),
            _ => None,
        })
        .collect();
    for (kind, value) in long {
        error.insert(kind, value);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inputs_whole_long_ones_cut() {
        assert_eq!(quoted("EMAIL:a@b.c"), r#""EMAIL:a@b.c""#);
        let long = "é".repeat(1000);
        let shown = quoted(&long);
        assert!(shown.ends_with("… (1000 characters)"), "{shown}");
        assert_eq!(shown.matches('é').count(), SHOWN_CHARS);
        assert_eq!(cut("x"), "x");
        assert_eq!(
            cut(&"x".repeat(65)),
            format!("{}… (65 characters)", "x".repeat(64))
        );
    }
}
