//! The `ppppp` commands' side of the control socket: one muxrpc call per command, over the
//! project's muxrpc machine, with errors a person can act on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::transport::muxrpc::Permissions;
use crate::transport::muxrpc::codec::Decoder;
use crate::transport::muxrpc::rpc::{CallId, CallType, Event, Rpc};

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A connection to the peer running in a directory.
#[derive(Debug)]
pub(crate) struct Client {
    stream: UnixStream,
    dir: PathBuf,
    decoder: Decoder,
    rpc: Rpc,
    chunk: Vec<u8>,
}

impl Client {
    pub(crate) fn new(stream: UnixStream, dir: &Path) -> Self {
        Self {
            stream,
            dir: dir.to_path_buf(),
            decoder: Decoder::new(),
            // The peer never calls us.
            rpc: Rpc::new(Permissions::Allow(BTreeSet::new())),
            chunk: vec![0u8; READ_CHUNK_BYTES],
        }
    }

    /// Calls `method` with `fields`; its answer.
    ///
    /// # Errors
    /// The peer's error, or a connection that broke or is not a ppppp peer's.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        fields: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let id = self.start(method, fields, CallType::Async).await?;
        loop {
            for event in self.next_events().await? {
                match event {
                    Event::Response { id: of, result } if of == id => {
                        return match result {
                            Ok(body) => body
                                .parse_json()
                                .map_err(|error| self.not_a_peer(&error.to_string())),
                            Err(error) => Err(anyhow::anyhow!("{}", error.message)),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Calls the source `method` with `fields`; hands each item's JSON text to `item`
    /// until the stream ends.
    ///
    /// # Errors
    /// The peer's error, a broken connection, or `item`'s error.
    pub(crate) async fn source(
        &mut self,
        method: &str,
        fields: serde_json::Value,
        mut item: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let id = self.start(method, fields, CallType::Source).await?;
        loop {
            for event in self.next_events().await? {
                match event {
                    Event::Data { id: of, body } if of == id => item(body.as_bytes())?,
                    Event::End { id: of, error } if of == id => {
                        return match error {
                            None => Ok(()),
                            Some(error) => Err(anyhow::anyhow!("{}", error.message)),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    async fn start(
        &mut self,
        method: &str,
        fields: serde_json::Value,
        call_type: CallType,
    ) -> anyhow::Result<CallId> {
        let id = self.rpc.call(&[method], &[fields], call_type)?;
        let mut bytes = Vec::new();
        self.rpc.encode_transmit(&mut bytes);
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|error| self.closed(Some(&error)))?;
        Ok(id)
    }

    async fn next_events(&mut self) -> anyhow::Result<Vec<Event>> {
        let read = self
            .stream
            .read(&mut self.chunk)
            .await
            .map_err(|error| self.closed(Some(&error)))?;
        if read == 0 {
            return Err(self.closed(None));
        }
        self.decoder
            .push(self.chunk.get(..read).unwrap_or_default());
        while let Some(frame) = self
            .decoder
            .next_frame()
            .map_err(|error| self.not_a_peer(&error.to_string()))?
        {
            self.rpc
                .handle_frame(frame)
                .map_err(|error| self.not_a_peer(&error.to_string()))?;
        }
        let events: Vec<Event> = std::iter::from_fn(|| self.rpc.poll_event()).collect();
        if events.iter().any(|event| matches!(event, Event::Goodbye)) {
            return Err(self.closed(None));
        }
        Ok(events)
    }

    fn closed(&self, error: Option<&std::io::Error>) -> anyhow::Error {
        let owner = super::socket::owner(&self.dir)
            .map(|uid| format!(" (uid {uid} owns the socket)"))
            .unwrap_or_default();
        let error = error.map(|error| format!(": {error}")).unwrap_or_default();
        anyhow::anyhow!(
            "the peer in {} closed the connection without answering{error}: it stopped, it \
             serves only the user it runs as{owner}, or it has too many local clients",
            self.dir.display()
        )
    }

    fn not_a_peer(&self, error: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{} did not answer as a ppppp peer's control socket ({error})",
            super::socket::socket_path(&self.dir).display()
        )
    }
}
