//! The one error type of this crate: what is wrong, in which file, at which line and column,
//! in which field.

use std::fmt;

/// The kind of a configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key the schema does not know (a typo, or a setting in the wrong table).
    UnknownField,
    /// A required key is absent.
    MissingField,
    /// A value of the wrong type, or outside what ipvsadm accepts.
    InvalidValue,
    /// A second service with the same VIP (or fwmark), a second real server with the same
    /// address in one service, a second sync daemon of one role ...
    Duplicate,
    /// Settings that exclude each other (`vip` and `fwmark`, tunnel options on a DR server ...).
    Conflict,
}

/// A configuration error, located in its file.
///
/// `Display` prints `file:line:column: field: message`, the form editors jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The file name given to the parser.
    pub file: String,
    /// Line, 1-based (0 when the error is not about a place in the file, e.g. I/O).
    pub line: usize,
    /// Column in characters, 1-based (0 with line 0).
    pub column: usize,
    /// The setting, as a path: `service[1].real[0].weight`, `director.interfaces` ...
    /// Empty when the error is not about one setting (TOML syntax).
    pub field: String,
    /// The explanation (ipvsadm's wording where ipvsadm has one).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a byte offset of a source falls: 1-based line and character column.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The key path of the setting at `offset`, guessed from the text: the last table header
/// above it plus the key on its line (`service.real.weight`). Used for errors that TOML
/// reports with a place but without the key.
pub(crate) fn key_path_at(source: &str, offset: usize) -> String {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = source.get(offset..).and_then(|s| s.find('\n')).map_or(source.len(), |i| offset + i);
    let line = source.get(line_start..line_end).unwrap_or("").trim();
    if line.starts_with('[') {
        return header_name(line);
    }
    let header = source
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(header_name)
        .unwrap_or_default();
    let key = match line.split_once('=') {
        Some((k, _)) => k.trim().trim_matches('"').to_string(),
        None => String::new(),
    };
    match (header.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => header,
        (false, false) => format!("{header}.{key}"),
    }
}

/// `[[service.real]]  # comment` -> `service.real`.
fn header_name(line: &str) -> String {
    let without_comment = line.split('#').next().unwrap_or("");
    without_comment.trim().trim_start_matches('[').trim_end_matches(']').trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_character_columns() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_column(src, 0), (1, 1));
        // Offset of "= 2": 'b' (1 byte) + 'é' (2 bytes) + ' ' after line 1 (6 bytes).
        assert_eq!(line_column(src, 6 + 4), (2, 4));
        assert_eq!(line_column(src, 999), (3, 1));
    }

    #[test]
    fn key_paths_come_from_the_header_and_the_key() {
        let src = "[director]\nsocket = 1\n[[service]]\n[[service.real]] # x\nweight = \"a\"\n";
        assert_eq!(key_path_at(src, src.find("1").unwrap()), "director.socket");
        assert_eq!(key_path_at(src, src.find("\"a\"").unwrap()), "service.real.weight");
        assert_eq!(key_path_at(src, src.find("[[service.real").unwrap()), "service.real");
    }
}
