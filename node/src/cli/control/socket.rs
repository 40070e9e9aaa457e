//! The control socket's file: `DIR/socket`, a Unix domain socket only its owner can use.
//!
//! **Server.** `ppppp serve` refuses a peer directory that another user owns or that group
//! or others may write (they could replace the socket, or the secret beside it). It binds
//! the socket inside a fresh private directory, makes it mode 0600 there, and only then
//! renames it to `DIR/socket`: at no moment can anyone else connect. A socket file left by a
//! killed peer is stale and replaced (the store's writer lock, taken before, proves no other
//! peer runs here). Each connection's peer credentials are checked as well, so not even a
//! socket whose mode was loosened lets another user in.
//!
//! **Client.** The `ppppp` commands connect to `DIR/socket` when it is there; a socket
//! nobody listens on is stale (the peer was killed) and the command reads the store
//! instead.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::net::{UnixListener, UnixStream};

/// The socket's name in a peer directory.
pub(crate) const SOCKET_FILE: &str = "socket";
/// The mode of the socket file: owner read and write, nothing for anyone else.
const SOCKET_MODE: u32 = 0o600;
/// Permission bits that must be clear on a peer directory: group and others may not write.
const DIR_FORBIDDEN_BITS: u32 = 0o022;
/// A Unix socket path's longest length (`sun_path` holds 108 bytes with its NUL).
const SOCKET_PATH_BYTES_MAX: usize = 107;

/// `DIR/socket`.
pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_FILE)
}

/// The socket file of a bound control socket; removed when dropped (the peer stops).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// The user the peer runs as (the socket file's owner): the only one it serves.
    pub(crate) uid: u32,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Refuses a peer directory others could tamper with.
///
/// # Errors
/// The directory is group- or world-writable, or owned by another user than `uid`.
pub(crate) fn check_private_dir(dir: &Path, uid: Option<u32>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    anyhow::ensure!(
        mode & DIR_FORBIDDEN_BITS == 0,
        "{} is writable by group or others (mode {mode:04o}); refusing to run a peer whose \
         secret and control socket others could replace: `chmod go-w {}`",
        dir.display(),
        dir.display()
    );
    if let Some(uid) = uid {
        anyhow::ensure!(
            meta.uid() == uid,
            "{} belongs to uid {}, but the peer runs as uid {uid}; refusing to run a peer in \
             another user's directory",
            dir.display(),
            meta.uid()
        );
    }
    Ok(())
}

/// Binds `DIR/socket` (mode 0600), replacing a stale one.
///
/// # Errors
/// The path is too long, the directory is not private, or the socket cannot be made.
pub(crate) fn bind(dir: &Path) -> anyhow::Result<(UnixListener, SocketFile)> {
    let path = socket_path(dir);
    anyhow::ensure!(
        path.as_os_str().len() <= SOCKET_PATH_BYTES_MAX,
        "the control socket path {} is longer than {SOCKET_PATH_BYTES_MAX} bytes, the limit \
         of Unix sockets; use a shorter --dir",
        path.display()
    );
    check_private_dir(dir, None)?;
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        anyhow::ensure!(
            meta.file_type().is_socket(),
            "{} exists and is not a socket; move it away",
            path.display()
        );
    }
    let staging = dir.join(format!(".socket-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let bound = bind_in(&staging, &path);
    let _ = std::fs::remove_dir_all(&staging);
    let (listener, file) = bound?;
    check_private_dir(dir, Some(file.uid))?;
    Ok((listener, file))
}

fn bind_in(staging: &Path, path: &Path) -> anyhow::Result<(UnixListener, SocketFile)> {
    let staged = staging.join(SOCKET_FILE);
    let listener = UnixListener::bind(&staged)
        .with_context(|| format!("cannot create the control socket {}", staged.display()))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("cannot make {} private", staged.display()))?;
    let uid = std::fs::metadata(&staged)
        .with_context(|| format!("cannot read {}", staged.display()))?
        .uid();
    std::fs::rename(&staged, path).with_context(|| {
        format!(
            "cannot move the control socket to {} (is another peer starting here?)",
            path.display()
        )
    })?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            uid,
        },
    ))
}

/// What a command finds in a peer directory.
#[derive(Debug)]
pub(crate) enum Found {
    /// A running peer answered.
    Running(UnixStream),
    /// No peer runs; `stale`: a socket file is there that nobody listens on.
    Stopped { stale: bool },
}

/// Connects to the peer running in `dir`, if any.
///
/// # Errors
/// The socket is there but may not be used (permissions, another user's, not a socket).
pub(crate) async fn connect(dir: &Path) -> anyhow::Result<Found> {
    let path = socket_path(dir);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found::Stopped { stale: false });
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!(
                "permission denied: cannot look into {} (the peer directory belongs to \
                 another user?)",
                dir.display()
            );
        }
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    anyhow::ensure!(
        meta.file_type().is_socket(),
        "{} is not a socket; it is not a ppppp peer's control socket",
        path.display()
    );
    match UnixStream::connect(&path).await {
        Ok(stream) => Ok(Found::Running(stream)),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            Ok(Found::Stopped { stale: true })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(Found::Stopped { stale: false })
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
            "permission denied: {} belongs to uid {} (mode {:04o}); a peer answers only the \
             user it runs as",
            path.display(),
            meta.uid(),
            meta.permissions().mode() & 0o7777
        ),
        Err(error) => Err(error).with_context(|| format!("cannot connect to {}", path.display())),
    }
}

/// Who owns the socket file (for error messages).
pub(crate) fn owner(dir: &Path) -> Option<u32> {
    std::fs::symlink_metadata(socket_path(dir))
        .ok()
        .map(|meta| meta.uid())
}
