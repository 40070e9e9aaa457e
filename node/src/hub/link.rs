//! The byte plumbing of one muxrpc connection, shared by the hub and the hub client: a
//! reader that decodes frames and waits for its owner's credit before reading again, and a
//! writer that drains a bounded queue and reports what it wrote (the owner's measure of
//! bytes in flight).

use std::future::Future;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::net::BoxStream;
use crate::transport::muxrpc::codec::{Decoder, Frame, HEADER_LEN};

/// Largest read from a connection before its frames are handed on.
pub const LINK_READ_CHUNK_BYTES: usize = 64 * 1024;

/// Most write batches waiting for one connection; a peer that lets it fill is not reading
/// and is disconnected.
pub const LINK_WRITE_BATCHES_MAX: usize = 1024;

/// Reads `reader` until it ends; hands each chunk's frames to `deliver`, which resolves when
/// the owner wants more (`false`: stop). Returns why reading stopped (`None`: clean EOF).
pub(crate) async fn read_frames<D, F>(mut reader: ReadHalf<BoxStream>, deliver: D) -> Option<String>
where
    D: Fn(Vec<Frame>) -> F,
    F: Future<Output = bool>,
{
    let mut decoder = Decoder::new();
    let mut chunk = vec![0u8; LINK_READ_CHUNK_BYTES.max(HEADER_LEN)];
    loop {
        let read = match reader.read(&mut chunk).await {
            Ok(read) => read,
            Err(error) => return Some(error.to_string()),
        };
        if read == 0 {
            return match decoder.buffered_len() {
                0 => None,
                buffered => Some(format!(
                    "stream ended inside a frame ({buffered} bytes buffered)"
                )),
            };
        }
        decoder.push(chunk.get(..read).unwrap_or_default());
        let mut frames = Vec::new();
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return Some(error.to_string()),
            }
        }
        if frames.is_empty() {
            continue;
        }
        let finished = decoder.is_finished();
        if !deliver(frames).await || finished {
            return None;
        }
    }
}

/// Writes batches until the queue closes, then shuts the stream down. `written` hears each
/// batch's size once it is written; the error, if writing fails, is returned.
pub(crate) async fn write_batches<W>(
    mut writer: WriteHalf<BoxStream>,
    mut batches: mpsc::Receiver<Vec<u8>>,
    written: W,
) -> Option<String>
where
    W: Fn(usize),
{
    while let Some(batch) = batches.recv().await {
        let result = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        if let Err(error) = result.await {
            return Some(error.to_string());
        }
        written(batch.len());
    }
    let _ = writer.shutdown().await;
    None
}
