//! Parameter matrices: the axes of a sweep (`--set PATH=V1,V2,…` on the command line, or a
//! `[matrix]` table in the scenario file), expanded to cells — the cross product of the
//! axes' values — each a complete scenario, validated before anything runs.
//!
//! A path names a field of the scenario file by its TOML keys, dot-separated; an array of
//! tables (`group`, `fault`, `network.link`) is indexed by an element's `name` or by its
//! position: `group.peer.count`, `network.latency.max`, `fault.0.duration`. A value is read
//! as TOML when it parses (`10`, `0.5`, `true`, `["a", "b"]`) and as a string otherwise
//! (`50ms`, `exp(3m)`). Commas inside parentheses, brackets and quotes do not split values, so
//! `--set 'fault.0.peers=["random(10%, east)"],["random(50%, east)"]'` has two values.
//!
//! Cells vary fastest in the last axis. `--set` axes come after the file's (whose keys are
//! in sorted order) and replace a file axis of the same path.

use std::path::Path;

use crate::scenario::{Scenario, ScenarioError};
use crate::sweep::{Parameter, cell_label};

/// The largest number of cells a matrix may expand to.
pub const CELLS_MAX: usize = 10_000;

/// One axis: a scenario field and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted path of the field.
    pub path: String,
    /// Its values, in order.
    pub values: Vec<toml::Value>,
}

/// One expanded cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Its directory name (`cell-01`, …; numbered from 1 in matrix order).
    pub dir: String,
    /// Parameters, in axis order.
    pub parameters: Vec<Parameter>,
    /// The cell's scenario file (TOML text without the `[matrix]` table).
    pub text: String,
    /// The scenario, parsed and validated.
    pub scenario: Scenario,
}

/// Why a matrix cannot be expanded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The scenario file cannot be read or is not TOML.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A `--set` argument without `=` or without values.
    #[error("--set `{0}`: write PATH=VALUE[,VALUE…], e.g. group.peer.count=10,20,30")]
    SetSyntax(String),
    /// A `[matrix]` entry that is not an array of values.
    #[error("[matrix] `{0}`: write \"PATH\" = [VALUE, VALUE, …] with at least one value")]
    MatrixEntry(String),
    /// A path that names no field that can be set.
    #[error("`{path}`: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A cell whose scenario does not validate.
    #[error("cell {cell}: {field}: {message}")]
    InvalidCell {
        /// The cell's parameters.
        cell: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Too many cells.
    #[error("the matrix has {0} cells; at most {CELLS_MAX}")]
    TooManyCells(usize),
}

/// Parses one `--set PATH=V1,V2` argument.
///
/// # Errors
/// No `=`, an empty path, or no value.
pub fn parse_set(argument: &str) -> Result<Axis, MatrixError> {
    let syntax = || MatrixError::SetSyntax(argument.to_owned());
    let (path, values) = argument.split_once('=').ok_or_else(syntax)?;
    let path = path.trim();
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(syntax());
    }
    let values: Vec<toml::Value> = split_values(values)
        .iter()
        .map(|v| value_of(v.trim()))
        .collect();
    if values.is_empty() || values.iter().any(|v| v.as_str() == Some("")) {
        return Err(syntax());
    }
    Ok(Axis {
        path: path.to_owned(),
        values,
    })
}

/// Splits on commas outside parentheses, brackets, braces and quotes.
fn split_values(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0_i32;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// A value as TOML when it parses as one, else as a string.
fn value_of(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// A value as shown in labels, tables and `runs.csv`: strings bare, the rest as TOML.
#[must_use]
pub fn show_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Reads a scenario file and expands its `[matrix]` and the `--set` axes into cells.
///
/// # Errors
/// Unreadable or invalid file, bad axes, or a cell that does not validate.
pub fn expand_file(path: &Path, sets: &[Axis]) -> Result<Vec<Cell>, MatrixError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.display().to_string(),
        source,
    })?;
    // The file itself must be valid, with its errors located in its own lines.
    Scenario::parse(&text, path)?;
    let mut document: toml::Table = toml::from_str(&text).map_err(|error| MatrixError::Path {
        path: path.display().to_string(),
        reason: error.to_string(),
    })?;
    let mut axes = file_axes(document.remove("matrix"))?;
    for set in sets {
        axes.retain(|axis| axis.path != set.path);
        axes.push(set.clone());
    }
    expand(&document, &axes, path)
}

fn file_axes(matrix: Option<toml::Value>) -> Result<Vec<Axis>, MatrixError> {
    let Some(matrix) = matrix else {
        return Ok(Vec::new());
    };
    let table = matrix
        .as_table()
        .ok_or_else(|| MatrixError::MatrixEntry("matrix".to_owned()))?;
    table
        .iter()
        .map(|(path, values)| match values.as_array() {
            Some(values) if !values.is_empty() => Ok(Axis {
                path: path.clone(),
                values: values.clone(),
            }),
            _ => Err(MatrixError::MatrixEntry(path.clone())),
        })
        .collect()
}

/// The cells of `axes` over `document` (a scenario without its `[matrix]`).
///
/// # Errors
/// Bad paths, too many cells, or a cell that does not validate.
pub fn expand(
    document: &toml::Table,
    axes: &[Axis],
    path: &Path,
) -> Result<Vec<Cell>, MatrixError> {
    let count = axes
        .iter()
        .try_fold(1_usize, |n, axis| n.checked_mul(axis.values.len()))
        .unwrap_or(usize::MAX);
    if count > CELLS_MAX {
        return Err(MatrixError::TooManyCells(count));
    }
    let width = count.to_string().len().max(2);
    (0..count)
        .map(|index| {
            let mut rest = index;
            let mut chosen = vec![(String::new(), toml::Value::Boolean(false)); axes.len()];
            for (slot, axis) in chosen.iter_mut().zip(axes).rev() {
                *slot = (
                    axis.path.clone(),
                    axis.values[rest % axis.values.len()].clone(),
                );
                rest /= axis.values.len();
            }
            cell(
                document,
                &chosen,
                format!("cell-{:0width$}", index + 1),
                path,
            )
        })
        .collect()
}

fn cell(
    document: &toml::Table,
    chosen: &[(String, toml::Value)],
    dir: String,
    path: &Path,
) -> Result<Cell, MatrixError> {
    let mut table = document.clone();
    for (field, value) in chosen {
        set(&mut table, field, value.clone())?;
    }
    let parameters: Vec<Parameter> = chosen
        .iter()
        .map(|(field, value)| Parameter {
            path: field.clone(),
            value: show_value(value),
        })
        .collect();
    let text = toml::to_string(&table).map_err(|error| MatrixError::Path {
        path: cell_label(&parameters),
        reason: error.to_string(),
    })?;
    let scenario = Scenario::parse(&text, path).map_err(|error| match error {
        ScenarioError::Invalid { field, message, .. } => MatrixError::InvalidCell {
            cell: cell_label(&parameters),
            field,
            message,
        },
        other => MatrixError::Scenario(other),
    })?;
    Ok(Cell {
        dir,
        parameters,
        text,
        scenario,
    })
}

/// Sets the field at dotted `path` in `table`, creating missing tables on the way.
fn set(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), MatrixError> {
    let error = |reason: String| MatrixError::Path {
        path: path.to_owned(),
        reason,
    };
    let segments: Vec<&str> = path.split('.').collect();
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| error("empty path".to_owned()))?;
    let mut current = table;
    let mut walked = String::new();
    let mut iter = parents.iter().peekable();
    while let Some(key) = iter.next() {
        walked = join(&walked, key);
        let entry = current
            .entry((*key).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            toml::Value::Array(items) => {
                let Some(selector) = iter.next() else {
                    return Err(error(format!(
                        "`{walked}.{last}` is an element of a list; name one of its fields"
                    )));
                };
                let element = element(items, selector)
                    .map_err(|reason| error(format!("`{walked}`: {reason}")))?;
                walked = join(&walked, selector);
                element
            }
            _ => return Err(error(format!("`{walked}` is a value, not a table"))),
        };
    }
    if matches!(
        current.get(*last),
        Some(toml::Value::Table(_) | toml::Value::Array(_))
    ) && !matches!(value, toml::Value::Table(_) | toml::Value::Array(_))
    {
        return Err(error(format!(
            "`{path}` is a table or a list; name one of its fields"
        )));
    }
    current.insert((*last).to_owned(), value);
    Ok(())
}

fn join(walked: &str, key: &str) -> String {
    if walked.is_empty() {
        key.to_owned()
    } else {
        format!("{walked}.{key}")
    }
}

/// The element of an array of tables named `selector` (its `name`, or its index).
fn element<'a>(
    items: &'a mut [toml::Value],
    selector: &str,
) -> Result<&'a mut toml::Table, String> {
    let names: Vec<String> = items
        .iter()
        .filter_map(|item| {
            item.get("name")
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let len = items.len();
    let position = match selector.parse::<usize>() {
        Ok(index) if index < len => Some(index),
        Ok(index) => return Err(format!("index {index} is past the {len} element(s)")),
        Err(_) => items
            .iter()
            .position(|item| item.get("name").and_then(toml::Value::as_str) == Some(selector)),
    };
    let Some(position) = position else {
        return Err(if names.is_empty() {
            format!("no element named `{selector}`; index it by position (0..{len})")
        } else {
            format!(
                "no element named `{selector}` (there are: {})",
                names.join(", ")
            )
        });
    };
    items[position]
        .as_table_mut()
        .ok_or_else(|| format!("element `{selector}` is not a table"))
}
