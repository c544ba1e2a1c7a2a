//! User input quoted in error messages: whole when short, else a short
//! prefix and the input's length, so that a refused megabyte is not printed
//! back (a leads file's line, an argument, a line of a record).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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

/// Longest path a file can have on Linux (`PATH_MAX`), in bytes: a longer
/// path argument is refused by the argument parser, so that no message
/// quotes more of one (the library's own messages quote paths whole).
const PATH_MAX: usize = 4096;

/// Characters of a path shown at each end when [`path`] cuts it.
const PATH_END_CHARS: usize = 100;

/// A path argument: refused when longer than any file's path can be.
pub(crate) fn path_arg(text: &str) -> Result<PathBuf, String> {
    if text.len() > PATH_MAX {
        return Err(format!(
            "a path of {} bytes: longer than any file's path ({PATH_MAX} bytes)",
            text.len()
        ));
    }
    Ok(PathBuf::from(text))
}

/// `path` as an error message shows it: whole when short, else its first
/// and last characters (the file's name) and its length.
pub(crate) fn path(path: &Path) -> String {
    let text = path.display().to_string();
    let chars = text.chars().count();
    if chars <= 2 * PATH_END_CHARS {
        return text;
    }
    let head: String = text.chars().take(PATH_END_CHARS).collect();
    let tail: String = text.chars().skip(chars - PATH_END_CHARS).collect();
    format!("{head}…{tail} ({chars} characters)")
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

    #[test]
    fn long_paths_are_refused_or_cut_keeping_the_file_name() {
        assert!(path_arg(&"d/".repeat(3000)).is_err());
        assert_eq!(path_arg("leads.csv"), Ok(PathBuf::from("leads.csv")));
        let long = format!("/{}/leads.csv", "d".repeat(1000));
        let shown = path(Path::new(&long));
        assert!(shown.starts_with("/ddd"), "{shown}");
        assert!(
            shown.contains('…') && shown.ends_with("/leads.csv (1011 characters)"),
            "{shown}"
        );
        assert!(shown.chars().count() < 250, "{shown}");
        assert_eq!(path(Path::new("/tmp/leads.csv")), "/tmp/leads.csv");
    }
}
