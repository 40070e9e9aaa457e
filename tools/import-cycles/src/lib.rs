//! Finds import cycles between the modules of a crate: two files that each name something the
//! other defines, directly or through others. A cycle means neither file can be read, tested
//! or moved without the other; the fix is usually a type in the wrong file (a message, an
//! error) that wants a module of its own. See [`graph`] for what counts as a dependency.
//!
//! The check runs on every target (library, programs, tests, benches) of every workspace
//! member, from `cargo metadata`.

pub mod graph;
pub mod resolve;
pub mod tree;
pub mod workspace;

use std::path::PathBuf;

/// Why a crate could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("module `{module}`: neither {module}.rs nor {module}/mod.rs in {dir}")]
    NoModuleFile { module: String, dir: PathBuf },
    #[error("cargo metadata: {0}")]
    Metadata(String),
}
