//! A raw muxrpc client over plaintext TCP, to play a hostile or sloppy peer.

use node::transport::muxrpc::codec::Decoder;
use node::transport::muxrpc::perms::Permissions;
use node::transport::muxrpc::rpc::{Body, CallId, CallType, Event, Rpc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client speaking muxrpc by hand.
pub struct RawClient {
    pub stream: TcpStream,
    pub rpc: Rpc,
    decoder: Decoder,
}

impl RawClient {
    pub async fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address).await.expect("connect");
        Self {
            stream,
            rpc: Rpc::new(Permissions::anonymous()),
            decoder: Decoder::new(),
        }
    }

    /// Sends what the muxrpc machine queued.
    pub async fn flush(&mut self) {
        let mut bytes = Vec::new();
        self.rpc.encode_transmit(&mut bytes);
        if !bytes.is_empty() {
            self.stream.write_all(&bytes).await.expect("write");
        }
    }

    pub async fn call(&mut self, name: &[&str], call_type: CallType) -> CallId {
        let id = self.rpc.call(name, &[], call_type).expect("call");
        self.flush().await;
        id
    }

    pub async fn send_json(&mut self, id: CallId, value: &Value) {
        self.rpc
            .send(id, Body::Json(value.to_string().into_bytes()))
            .expect("send");
        self.flush().await;
    }

    /// Reads until an event arrives or the connection ends (`None`).
    pub async fn next_event(&mut self) -> Option<Event> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(event) = self.rpc.poll_event() {
                return Some(event);
            }
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    if self.rpc.handle_frame(frame).is_err() {
                        return None;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            let read = self.stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            self.decoder.push(&chunk[..read]);
        }
    }

    /// Whether the peer closed the connection (reads until EOF or error, discarding data).
    pub async fn closed_by_peer(&mut self) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    }
}
