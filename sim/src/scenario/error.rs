//! Scenario errors located in the text: a field path (`group[1].count`), found in the TOML
//! document and turned into `file:line:column`.

use std::fmt;
use std::path::Path;

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Bad TOML, an unknown field or a bad value.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field path, e.g. `group[1].count` (`(document)` for syntax errors).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ScenarioError {
    /// The field path, for `Invalid` errors.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            ScenarioError::Io { .. } => None,
        }
    }

    /// The 1-based line, for `Invalid` errors.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Invalid { line, .. } => Some(*line),
            ScenarioError::Io { .. } => None,
        }
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A field path, e.g. `group[1].count`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub(super) fn key(mut self, key: &str) -> FieldPath {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }
    pub(super) fn index(mut self, index: usize) -> FieldPath {
        self.0.push(Seg::Index(index));
        self
    }
}

pub(super) fn at(key: &str) -> FieldPath {
    FieldPath::default().key(key)
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(key) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A validation problem before it is located in the text.
#[derive(Debug, Clone)]
pub(super) struct Issue {
    pub(super) path: FieldPath,
    pub(super) message: String,
}

pub(super) fn issue(path: FieldPath, message: impl Into<String>) -> Issue {
    Issue {
        path,
        message: message.into(),
    }
}

/// 1-based line and column of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// The byte span of a field path in the document, or of its nearest ancestor that exists.
fn locate(text: &str, path: &FieldPath) -> Option<std::ops::Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<std::ops::Range<usize>> = None;
    let mut table: Option<&toml::de::DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&toml::Spanned<toml::de::DeValue<'_>>> = None;
    for seg in &path.0 {
        match seg {
            Seg::Key(key) => {
                let current = match value {
                    Some(v) => v.get_ref().as_table(),
                    None => table,
                };
                let Some(current) = current else { break };
                let Some((found_key, found)) = current
                    .iter()
                    .find(|(k, _)| k.get_ref().as_ref() == key.as_str())
                else {
                    break;
                };
                // Point at the key: its line is where a reader looks.
                best = Some(found_key.span());
                value = Some(found);
                table = None;
            }
            Seg::Index(index) => {
                let Some(array) = value.and_then(|v| v.get_ref().as_array()) else {
                    break;
                };
                let Some(item) = array.get(*index) else {
                    break;
                };
                let span = item.span();
                // An array-of-tables entry spans its keys; a zero span means "unknown".
                if span.end > span.start {
                    best = Some(span);
                } else if let Some(first_key) = item
                    .get_ref()
                    .as_table()
                    .and_then(|t| t.iter().map(|(k, _)| k.span()).min_by_key(|s| s.start))
                {
                    best = Some(first_key);
                }
                value = Some(item);
            }
        }
    }
    best
}

pub(super) fn located(path: &Path, text: &str, issue: &Issue) -> ScenarioError {
    let span = locate(text, &issue.path);
    let (line, column) = span.map_or((1, 1), |s| line_column(text, s.start));
    ScenarioError::Invalid {
        path: path.display().to_string(),
        line,
        column,
        field: issue.path.to_string(),
        message: issue.message.clone(),
    }
}

pub(super) fn serde_error(
    path: &Path,
    text: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> ScenarioError {
    let inner = error.inner();
    let message = inner.message().trim().to_owned();
    let mut field = error.path().to_string();
    // Name the field itself when serde reports it at its parent (missing fields).
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((name, _)) = rest.split_once('`')
        {
            let already = field == name || field.ends_with(&format!(".{name}"));
            if !already {
                field = if field == "." {
                    name.to_owned()
                } else {
                    format!("{field}.{name}")
                };
            }
        }
    }
    if field == "." {
        field = "(document)".to_owned();
    }
    let (line, column) = inner.span().map_or((1, 1), |s| line_column(text, s.start));
    ScenarioError::Invalid {
        path: path.display().to_string(),
        line,
        column,
        field,
        message,
    }
}
