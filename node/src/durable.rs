//! Small state files that must survive a crash: written whole or not at all.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one, never a
/// mix: write a sibling, fsync it, rename it over, fsync the directory. Returns once the new
/// contents are durable.
///
/// # Errors
/// Any I/O error; the old file is then intact.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = std::path::PathBuf::from(temporary);
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a state file; `None` if there is none yet.
///
/// # Errors
/// Any I/O error other than the file not existing.
pub fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert_eq!(read_optional(&path).expect("reads"), None);
        write_atomically(&path, b"[1]").expect("writes");
        write_atomically(&path, b"[1,2]").expect("writes");
        assert_eq!(
            read_optional(&path).expect("reads").as_deref(),
            Some("[1,2]")
        );
        assert!(!dir.path().join("state.json.new").exists());
    }
}
