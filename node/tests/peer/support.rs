//! Starting in-process nodes on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use node::net::TokioNet;
use node::peer::{
    self, AnyStore, DialTarget, DisconnectReason, NodeConfig, NodeEvent, NodeHandle, Timers,
    Transport,
};
use proto::keys::Keypair;
use proto::store::MemStore;

/// Recorded events of one node.
pub type Events = Arc<Mutex<Vec<NodeEvent>>>;

/// A node with an in-memory store, listening on 127.0.0.1.
pub async fn start(seed: u8, transport: Transport, dial: Vec<DialTarget>) -> (NodeHandle, Events) {
    run_recording(config_for(seed, transport, dial)).await
}

/// The config [`start`] runs: listening on loopback, short timers.
pub fn config_for(seed: u8, transport: Transport, dial: Vec<DialTarget>) -> NodeConfig {
    let mut config = NodeConfig::new(Keypair::from_seed(&[seed; 32]), u64::from(seed));
    config.listen = Some("127.0.0.1:0".to_owned());
    config.dial = dial;
    config.transport = transport;
    config.timers = Timers {
        keepalive_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(50),
        ..Timers::default()
    };
    config
}

/// Runs `config` with an in-memory store over `TokioNet`, recording its events.
pub async fn run_recording(mut config: NodeConfig) -> (NodeHandle, Events) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    config.events = Some(Arc::new(move |event| {
        sink.lock().expect("not poisoned").push(event)
    }));
    let handle = peer::run(config, Arc::new(TokioNet), AnyStore::new(MemStore::new()))
        .await
        .expect("node starts");
    (handle, events)
}

/// The reasons of the disconnects recorded so far.
pub fn disconnects(events: &Events) -> Vec<DisconnectReason> {
    events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter_map(|event| match event {
            NodeEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The reasons of the failed dials recorded so far.
pub fn dial_failures(events: &Events) -> Vec<String> {
    events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter_map(|event| match event {
            NodeEvent::DialFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The dial target of a running node.
pub fn target_of(node: &NodeHandle) -> DialTarget {
    DialTarget {
        address: node.address().expect("listening").to_owned(),
        key: Some(node.key()),
    }
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
