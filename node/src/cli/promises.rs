//! The promises a running peer made (pzp-promise 1.0.0's `DIR/promises.json`), replaced
//! atomically: a created promise is on disk before its token is handed out, and a redeemed one
//! is gone from disk before the redeemer hears `true`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;

use crate::invite::promise::{Promise, PromiseError, PromiseKind, Promises};
use crate::transport::Token;

/// The promises file in a peer directory.
const PROMISES_FILE: &str = "promises.json";
/// Largest promises file read: `PROMISES_MAX` entries of about 150 bytes each.
const PROMISES_FILE_BYTES_MAX: u64 = 256 * crate::invite::promise::PROMISES_MAX as u64;

/// This peer's promises and their file.
#[derive(Debug)]
pub(crate) struct PromiseBook {
    path: PathBuf,
    table: Mutex<Promises>,
}

impl PromiseBook {
    /// Loads `DIR/promises.json` (none yet: an empty book).
    ///
    /// # Errors
    /// The file cannot be read, is too big, or does not parse.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(PROMISES_FILE);
        let length = std::fs::metadata(&path).map_or(0, |meta| meta.len());
        anyhow::ensure!(
            length <= PROMISES_FILE_BYTES_MAX,
            "{} is {length} bytes, more than {PROMISES_FILE_BYTES_MAX}",
            path.display()
        );
        let table = match crate::durable::read_optional(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            Some(text) => {
                Promises::from_json(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => Promises::new(),
        };
        Ok(Self {
            path,
            table: Mutex::new(table),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Promises> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, table: &Promises) -> anyhow::Result<()> {
        crate::durable::write_atomically(&self.path, table.to_json().as_bytes())
            .with_context(|| format!("cannot save {}", self.path.display()))
    }

    /// Makes a promise and saves it; its token.
    pub(crate) fn create(&self, promise: Promise) -> anyhow::Result<Token> {
        let random = super::peer::random_bytes()?;
        let mut table = self.table();
        let token = table.create(promise, random, super::received::now_ms())?;
        self.save(&table)?;
        Ok(token)
    }

    /// Starts a redemption (see [`Promises::begin`]).
    pub(crate) fn begin(&self, token: &Token, kind: PromiseKind) -> Result<Promise, PromiseError> {
        self.table().begin(token, kind, super::received::now_ms())
    }

    /// The effect is done: the promise is spent, on disk first.
    pub(crate) fn finish(&self, token: &Token) -> anyhow::Result<()> {
        let mut table = self.table();
        table.finish(token);
        self.save(&table)
    }

    pub(crate) fn abandon(&self, token: &Token) {
        self.table().abandon(token);
    }
}
