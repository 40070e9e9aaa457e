//! The root of a node's supervision tree: starts the children in dependency order and stops
//! the node when one of them fails (a store failure must not be papered over).

use std::sync::Arc;

use proto::db::Db;
use proto::goals::Goals;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::config::NodeConfig;
use super::conns::{ConnsActor, ConnsArgs};
use super::gc::{GcActor, GcArgs};
use super::goals::{GoalsActor, GoalsArgs};
use super::handle::{NodeError, NodeHandle};
use super::store::{self, StoreActor, StoreArgs, StoreMsg};
use super::sync::{SyncActor, SyncArgs};
use super::{AnyStore, Emitter, NodeEvent, SharedDb};
use crate::net::Net;

/// Random stream purposes (see [`super::rng`]).
pub(crate) const RNG_ACCOUNT_NONCE: u64 = 1;
const RNG_CONNECTIONS: u64 = 2;

/// The root actor has no messages of its own; it only supervises.
pub(crate) enum RootMsg {}

pub(crate) struct RootActor;

impl Actor for RootActor {
    type Msg = RootMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<RootMsg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, error) => {
                tracing::error!(target: "ppppp::node", %error, "a node actor failed; stopping the node");
                myself.stop(Some(format!("child failed: {error}")));
            }
            SupervisionEvent::ActorTerminated(..) => {
                // Children only stop when the node shuts down; one stopping alone is a bug
                // or a failure, and a half node must not keep running.
                myself.stop(Some("a child stopped".to_owned()));
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RootMsg>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(None);
        Ok(())
    }
}

/// Builds the tree. The listener is bound first, so the handle knows its address.
pub(crate) async fn start(
    config: NodeConfig,
    net: Arc<dyn Net>,
    store: AnyStore,
) -> Result<NodeHandle, NodeError> {
    let events = Emitter(config.events.clone());
    let listener = match &config.listen {
        Some(address) => Some(
            net.bind(address)
                .await
                .map_err(|error| NodeError::Listen(error.to_string()))?,
        ),
        None => None,
    };
    let address = listener.as_ref().map(|listener| listener.local_addr());
    let db = SharedDb::new(Db::new(store));
    let mut goals = Goals::new();
    for (tangle, goal) in &config.goals {
        goals
            .set(*tangle, *goal)
            .map_err(|error| NodeError::Config(error.to_string()))?;
    }

    let (root, join) = Actor::spawn(None, RootActor, ())
        .await
        .map_err(NodeError::spawn)?;
    let supervisor = root.get_cell();
    let nonce_seed = store::seeded_bytes(&mut super::rng(&config, RNG_ACCOUNT_NONCE));
    let store_args = StoreArgs {
        db: db.clone(),
        keypair: config.keypair.clone(),
        nonce_seed,
        events: events.clone(),
    };
    let (store_ref, _) = Actor::spawn_linked(None, StoreActor, store_args, supervisor.clone())
        .await
        .map_err(NodeError::spawn)?;
    let sync_args = SyncArgs {
        db,
        store: store_ref.clone(),
        goals: goals.clone(),
        events: events.clone(),
    };
    let (sync_ref, _) = Actor::spawn_linked(None, SyncActor, sync_args, supervisor.clone())
        .await
        .map_err(NodeError::spawn)?;
    let _ = store_ref.cast(StoreMsg::Subscribe(sync_ref.clone()));
    let goals_args = GoalsArgs {
        goals,
        sync: sync_ref.clone(),
    };
    let (goals_ref, _) = Actor::spawn_linked(None, GoalsActor, goals_args, supervisor.clone())
        .await
        .map_err(NodeError::spawn)?;
    if let Some(bytes_max) = config.gc_bytes_max {
        let gc_args = GcArgs {
            store: store_ref.clone(),
            goals: goals_ref.clone(),
            bytes_max,
            interval: config.timers.gc_interval,
        };
        Actor::spawn_linked(None, GcActor, gc_args, supervisor.clone())
            .await
            .map_err(NodeError::spawn)?;
    }
    let conns_args = ConnsArgs {
        net,
        listener,
        targets: config.dial.clone(),
        transport: config.transport,
        keypair: config.keypair.clone(),
        sync: sync_ref,
        limits: config.limits,
        timers: config.timers,
        events: events.clone(),
        rng: super::rng(&config, RNG_CONNECTIONS),
    };
    let (conns_ref, _) = Actor::spawn_linked(None, ConnsActor, conns_args, supervisor)
        .await
        .map_err(NodeError::spawn)?;
    if let Some(address) = &address {
        events.emit(NodeEvent::Listening {
            address: address.clone(),
        });
    }
    NodeHandle::new(
        root,
        join,
        store_ref,
        goals_ref,
        conns_ref,
        address,
        config.keypair.public(),
    )
    .await
}
