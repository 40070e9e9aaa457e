//! The keypair's secret file, in pzp-keypair's format ([`Keypair::to_secret_file`]),
//! written the way the reference writes it: owner read-only (mode 0o400) and never over an
//! existing file (protocol.md §2.4).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proto::keys::{Keypair, KeypairError};

/// Owner may read, nobody else may do anything (the reference's mode `0x100`).
pub const SECRET_FILE_MODE: u32 = 0o400;
/// Permission bits that must be clear on a secret file we load: group and others.
const SECRET_FILE_FOREIGN_BITS: u32 = 0o077;

/// Why a secret file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyfileError {
    /// The file exists; it is never overwritten.
    #[error("{} already exists; refusing to overwrite a secret", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a pzp-keypair secret.
    #[error("{} is not a keypair secret file: {source}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: KeypairError,
    },
    /// Others may read the file, so the secret may have leaked.
    #[error(
        "{} can be read by other users (mode {mode:o}); run `chmod 400` on it and consider \
         the key compromised",
        path.display()
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io_error<'path>(
    op: &'static str,
    path: &'path Path,
) -> impl FnOnce(std::io::Error) -> KeyfileError + 'path {
    move |source| KeyfileError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `keypair` to `path` (mode 0o400), failing if `path` exists.
///
/// Written whole or not at all: the text goes to a temporary file that is fsynced and then
/// hard-linked to `path` (a link, unlike a rename, never replaces an existing file), and the
/// directory is fsynced.
///
/// # Errors
/// [`KeyfileError::Exists`] or I/O.
pub fn write_new(path: &Path, keypair: &Keypair) -> Result<(), KeyfileError> {
    if path.exists() {
        return Err(KeyfileError::Exists {
            path: path.to_path_buf(),
        });
    }
    let mut temporary_name = path.as_os_str().to_owned();
    temporary_name.push(".tmp");
    let temporary = PathBuf::from(temporary_name);
    // A leftover from a crash is never the real secret (that one is only ever at `path`).
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("remove", &temporary)(source)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_FILE_MODE)
        .open(&temporary)
        .map_err(io_error("create", &temporary))?;
    file.write_all(keypair.to_secret_file().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", &temporary))?;
    drop(file);
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyfileError::Exists {
                path: path.to_path_buf(),
            });
        }
        Err(source) => return Err(io_error("link", path)(source)),
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Reads the keypair at `path`, refusing a file others can read.
///
/// # Errors
/// I/O, [`KeyfileError::Exposed`] or [`KeyfileError::Malformed`].
pub fn read(path: &Path) -> Result<Keypair, KeyfileError> {
    let metadata = std::fs::metadata(path).map_err(io_error("read", path))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & SECRET_FILE_FOREIGN_BITS != 0 {
        return Err(KeyfileError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
    Keypair::from_secret_file(&text).map_err(|source| KeyfileError::Malformed {
        path: path.to_path_buf(),
        source,
    })
}
