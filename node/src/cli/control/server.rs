//! The control socket's server: accepts local clients (the peer's own user only, at most
//! [`CONTROL_CLIENTS_MAX`] at once) and runs each through a [`ClientSession`], executing
//! its calls on the node. One task per client moves bytes; one task per call runs it and
//! hands its replies back through a bounded channel, so a client that stops reading slows
//! its own calls and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use super::execute::Control;
use super::request::Request;
use super::session::{Action, ClientSession};
use crate::transport::muxrpc::rpc::CallId;

/// Local clients served at once; more are closed at accept (each holds a task and up to
/// `CONTROL_CALLS_MAX` calls).
pub(crate) const CONTROL_CLIENTS_MAX: usize = 32;
/// Replies and stream items waiting to be written to one client; producers wait beyond it.
pub(crate) const CLIENT_OUTPUT_ITEMS_MAX: usize = 64;
/// How long a failed accept (e.g. out of file descriptors) waits before the next.
const ACCEPT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
/// Bytes read from a client at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// What a call's task hands back to its client's task.
enum Output {
    Reply {
        id: CallId,
        result: Result<serde_json::Value, String>,
    },
    Item {
        id: CallId,
        json: String,
    },
    End {
        id: CallId,
        error: Option<String>,
    },
}

/// Serves the socket, answering only `uid`, until the task is aborted (which ends every
/// client and every call).
pub(crate) async fn serve(listener: tokio::net::UnixListener, uid: u32, control: Arc<Control>) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            Some(_) = clients.join_next() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                };
                match stream.peer_cred() {
                    Ok(credentials) if credentials.uid() == uid => {}
                    Ok(credentials) => {
                        tracing::warn!(target: "ppppp::serve", uid = credentials.uid(), "refused a control client of another user");
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(target: "ppppp::serve", %error, "refused a control client whose user is unknown");
                        continue;
                    }
                }
                if clients.len() >= CONTROL_CLIENTS_MAX {
                    tracing::warn!(target: "ppppp::serve", "refused a control client: {CONTROL_CLIENTS_MAX} already connected");
                    continue;
                }
                clients.spawn(serve_client(stream, Arc::clone(&control)));
            }
        }
    }
}

async fn serve_client(stream: UnixStream, control: Arc<Control>) {
    let (mut reader, mut writer) = stream.into_split();
    let mut session = ClientSession::default();
    let (sender, mut outputs) = mpsc::channel(CLIENT_OUTPUT_ITEMS_MAX);
    let mut calls: BTreeMap<CallId, AbortHandle> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let mut actions = Vec::new();
        let mut closing = false;
        tokio::select! {
            biased;
            read = reader.read(&mut chunk) => match read {
                Ok(0) | Err(_) => {
                    session.transport_closed(&mut actions);
                    closing = true;
                }
                Ok(read) => {
                    if let Err(reason) = session.receive(chunk.get(..read).unwrap_or_default(), &mut actions) {
                        tracing::debug!(target: "ppppp::serve", %reason, "closing a control client");
                        closing = true;
                    }
                }
            },
            Some(output) = outputs.recv() => apply(&mut session, &mut calls, output),
            Some(_) = tasks.join_next() => {}
        }
        for action in actions {
            match action {
                Action::Call { id, request } => {
                    let handle =
                        tasks.spawn(run_call(Arc::clone(&control), id, request, sender.clone()));
                    calls.insert(id, handle);
                }
                Action::Cancel { id } => {
                    if let Some(handle) = calls.remove(&id) {
                        handle.abort();
                    }
                }
            }
        }
        let mut bytes = Vec::new();
        session.transmit(&mut bytes);
        if !bytes.is_empty() && writer.write_all(&bytes).await.is_err() {
            return;
        }
        if closing {
            return;
        }
    }
}

fn apply(session: &mut ClientSession, calls: &mut BTreeMap<CallId, AbortHandle>, output: Output) {
    match output {
        Output::Reply { id, result } => {
            calls.remove(&id);
            session.respond(id, result);
        }
        Output::Item { id, json } => {
            if !session.send(id, json)
                && let Some(handle) = calls.remove(&id)
            {
                handle.abort();
            }
        }
        Output::End { id, error } => {
            calls.remove(&id);
            session.end(id, error);
        }
    }
}

async fn run_call(
    control: Arc<Control>,
    id: CallId,
    request: Request,
    outputs: mpsc::Sender<Output>,
) {
    match request {
        Request::Read(read) => {
            let result = control
                .stream(read, |json| {
                    let outputs = outputs.clone();
                    async move { outputs.send(Output::Item { id, json }).await.is_ok() }
                })
                .await;
            let _ = outputs
                .send(Output::End {
                    id,
                    error: result.err(),
                })
                .await;
        }
        request => {
            let result = control
                .execute(request)
                .await
                .map_err(|error| format!("{error:#}"));
            let _ = outputs.send(Output::Reply { id, result }).await;
        }
    }
}
