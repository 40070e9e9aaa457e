//! Reading a scenario: TOML text → [`Scenario`], validated, every error located.

use std::path::Path;

use super::error::{ScenarioError, line_column, located, serde_error};
use super::model::Scenario;

impl Scenario {
    /// Reads, parses and validates a scenario file.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, line and field.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` is used in errors and the repro line.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, line and field.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let deserializer = toml::Deserializer::parse(text).map_err(|error| {
            let (line, column) = error.span().map_or((1, 1), |s| line_column(text, s.start));
            ScenarioError::Invalid {
                path: path.display().to_string(),
                line,
                column,
                field: "(document)".to_owned(),
                message: error.message().trim().to_owned(),
            }
        })?;
        let mut scenario: Scenario = serde_path_to_error::deserialize(deserializer)
            .map_err(|error| serde_error(path, text, &error))?;
        scenario.source = path.to_path_buf();
        if let Some(problem) = scenario.validate().into_iter().next() {
            return Err(located(path, text, &problem));
        }
        Ok(scenario)
    }
}
