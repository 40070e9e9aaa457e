//! The root of a node's supervision tree: starts the children in dependency order and stops
//! the node when one of them fails (a store failure must not be papered over).

use std::sync::Arc;

use proto::db::Db;
use proto::goals::Goals;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::config::NodeConfig;
use super::connection::ConnContext;
use super::conns::{ConnsActor, ConnsArgs};
use super::error::NodeError;
use super::gc::{GcActor, GcArgs};
use super::goals::{GoalsActor, GoalsArgs};
use super::handle::{NodeHandle, Parts, StopReason};
use super::msgs::{AddedBatch, ConnsMsg, GoalsMsg, RootMsg, StoreMsg, SyncActorMsg};
use super::reconcile::SharedReconcilePeers;
use super::store::{self, StoreActor, StoreArgs};
use super::sync::{SyncActor, SyncArgs};
use super::{AnyStore, Emitter, NodeEvent, SharedDb};
use crate::net::{Listener, Net};

/// Batches of added msgs a `NodeHandle::subscribe_added` receiver may fall behind by before it
/// loses some (it is told how many: a live stream then ends rather than skip msgs silently).
pub const ADDED_BATCHES_BUFFERED: usize = 1024;

/// Random stream purposes (see [`super::rng`]).
const RNG_ACCOUNT_NONCE: u64 = 1;
const RNG_CONNECTIONS: u64 = 2;

pub(crate) struct RootActor;

fn note_stop(reason: &StopReason, text: String) {
    reason
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert(text);
}

impl Actor for RootActor {
    type Msg = RootMsg;
    type State = StopReason;
    type Arguments = StopReason;

    async fn pre_start(
        &self,
        _myself: ActorRef<RootMsg>,
        reason: StopReason,
    ) -> Result<StopReason, ActorProcessingErr> {
        Ok(reason)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        reason: &mut StopReason,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, error) => {
                tracing::error!(target: "ppppp::node", %error, "a node actor failed; stopping the node");
                note_stop(reason, error.to_string());
                myself.stop(Some(format!("child failed: {error}")));
            }
            SupervisionEvent::ActorTerminated(_, _, why) => {
                // Children only stop when the node shuts down; one stopping alone is a bug
                // or a failure, and a half node must not keep running.
                let why = why.unwrap_or_else(|| "no reason given".to_owned());
                note_stop(reason, format!("a node actor stopped ({why})"));
                myself.stop(Some("a child stopped".to_owned()));
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RootMsg>,
        _reason: &mut StopReason,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(None);
        Ok(())
    }
}

/// Starts a node: its actors, its listener and its dialer. Returns once the listener is bound
/// (if any, first: the handle knows its address) and the account exists. The same entry point
/// serves production (`TokioNet`, a disk store) and simulation (`TurmoilNet`, any store).
///
/// # Errors
/// [`NodeError`] if an actor fails to start (store failure, listener bind failure).
pub async fn run(
    config: NodeConfig,
    net: Arc<dyn Net>,
    store: AnyStore,
) -> Result<NodeHandle, NodeError> {
    let events = Emitter(config.events.clone());
    let listener = match &config.listen {
        Some(address) => Some(net.bind(address).await.map_err(NodeError::Listen)?),
        None => None,
    };
    let address = listener.as_ref().map(|listener| listener.local_addr());
    let mut goals = Goals::new();
    for (tangle, goal) in &config.goals {
        goals.set(*tangle, *goal).map_err(NodeError::Config)?;
    }

    let stop_reason = StopReason::default();
    let (root, join) = Actor::spawn(None, RootActor, Arc::clone(&stop_reason))
        .await
        .map_err(NodeError::Spawn)?;
    let supervisor = root.get_cell();
    // Children start in dependency order: the store, the sync that reads it, the goals that
    // steer the sync, GC over both, and last the connections that feed the sync.
    let db = SharedDb::new(Db::new(store));
    let core = spawn_core(&config, &events, db, goals, &supervisor).await?;
    if let Some(bytes_max) = config.gc_bytes_max {
        let gc_args = GcArgs {
            store: core.store.clone(),
            goals: core.goals.clone(),
            bytes_max,
            interval: config.timers.gc_interval,
        };
        Actor::spawn_linked(None, GcActor, gc_args, supervisor.clone())
            .await
            .map_err(NodeError::Spawn)?;
    }
    let conns = spawn_conns(
        &config,
        &events,
        net,
        listener,
        core.sync.clone(),
        supervisor,
    )
    .await?;
    if let Some(address) = &address {
        events.emit(NodeEvent::Listening {
            address: address.clone(),
        });
    }
    NodeHandle::new(Parts {
        root,
        join,
        stop_reason,
        store: core.store,
        goals: core.goals,
        conns,
        sync: core.sync,
        added: core.added,
        address,
        key: config.keypair.public(),
    })
    .await
}

/// The actors every node has whatever its network: the store, the sync and the goals.
struct Core {
    store: ActorRef<StoreMsg>,
    sync: ActorRef<SyncActorMsg>,
    goals: ActorRef<GoalsMsg>,
    added: tokio::sync::broadcast::Sender<AddedBatch>,
}

/// Spawns the store, the sync (subscribed to the store's adds) and the goals actor.
async fn spawn_core(
    config: &NodeConfig,
    events: &Emitter,
    db: SharedDb,
    goals: Goals,
    supervisor: &ActorCell,
) -> Result<Core, NodeError> {
    let (added, _) = tokio::sync::broadcast::channel(ADDED_BATCHES_BUFFERED);
    let store_args = StoreArgs {
        db: db.clone(),
        keypair: config.keypair.clone(),
        nonce_seed: account_nonce_seed(config),
        joined: config.account,
        events: events.clone(),
        added: added.clone(),
        verify_ahead: config.verify_ahead,
    };
    let (store, _) = Actor::spawn_linked(None, StoreActor, store_args, supervisor.clone())
        .await
        .map_err(NodeError::Spawn)?;
    let sync_args = SyncArgs {
        db,
        store: store.clone(),
        goals: goals.clone(),
        events: events.clone(),
        config: config.sync,
        reconcile: config.reconcile,
    };
    let (sync, _) = Actor::spawn_linked(None, SyncActor, sync_args, supervisor.clone())
        .await
        .map_err(NodeError::Spawn)?;
    let _ = store.cast(StoreMsg::Subscribe(sync.clone()));
    let goals_args = GoalsArgs {
        goals,
        sync: sync.clone(),
    };
    let (goals, _) = Actor::spawn_linked(None, GoalsActor, goals_args, supervisor.clone())
        .await
        .map_err(NodeError::Spawn)?;
    Ok(Core {
        store,
        sync,
        goals,
        added,
    })
}

/// Spawns the connection manager: the listener's accepts and the configured dials.
async fn spawn_conns(
    config: &NodeConfig,
    events: &Emitter,
    net: Arc<dyn Net>,
    listener: Option<Box<dyn Listener>>,
    sync: ActorRef<SyncActorMsg>,
    supervisor: ActorCell,
) -> Result<ActorRef<ConnsMsg>, NodeError> {
    let conns_args = ConnsArgs {
        net,
        listener,
        targets: config.dial.clone(),
        context: ConnContext {
            transport: config.transport,
            keypair: config.keypair.clone(),
            sync,
            limits: config.limits,
            timers: config.timers,
            events: events.clone(),
            app: config.app.clone(),
            reconcile: SharedReconcilePeers::new(config.reconcile),
        },
        rng: super::rng(config, RNG_CONNECTIONS),
    };
    let (conns, _) = Actor::spawn_linked(None, ConnsActor, conns_args, supervisor)
        .await
        .map_err(NodeError::Spawn)?;
    Ok(conns)
}

/// The account a node with `config` creates when its store has none for its key — what the
/// store actor will do at start — so harnesses can compute feed IDs (e.g. to set goals on
/// peers' feeds) before the nodes run. A store that already holds an account for the key
/// keeps that one.
#[must_use]
pub fn fresh_account_id(config: &NodeConfig) -> proto::ids::AccountId {
    let first = NodeConfig {
        incarnation: 0,
        ..config.clone()
    };
    let nonce = bs58::encode(account_nonce_seed(&first)).into_string();
    proto::msg::Msg::create_account_root(&config.keypair, store::ACCOUNT_SUBDOMAIN, &nonce)
        .expect("invariant: the account subdomain is a valid domain")
        .id()
}

/// The seed of the nonce of the account a node creates (the store actor base58-encodes it).
fn account_nonce_seed(config: &NodeConfig) -> [u8; 32] {
    store::seeded_bytes(&mut super::rng(config, RNG_ACCOUNT_NONCE))
}
