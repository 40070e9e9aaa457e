//! The GC actor: on a timer, asks the store to collect garbage under the node's byte budget
//! with the current goals (pzp-gc's automatic mode; `proto::gc` decides what to do).

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::AbortOnDrop;
use super::msgs::{GcMsg, GoalsMsg, StoreMsg};

/// The GC actor.
pub(crate) struct GcActor;

pub(crate) struct GcArgs {
    pub(crate) store: ActorRef<StoreMsg>,
    pub(crate) goals: ActorRef<GoalsMsg>,
    pub(crate) bytes_max: u64,
    pub(crate) interval: Duration,
}

pub(crate) struct GcState {
    store: ActorRef<StoreMsg>,
    goals: ActorRef<GoalsMsg>,
    bytes_max: u64,
    /// The timer task; aborted with the actor (a crashed host drops it too).
    _timer: AbortOnDrop,
}

impl Actor for GcActor {
    type Msg = GcMsg;
    type State = GcState;
    type Arguments = GcArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<GcMsg>,
        args: GcArgs,
    ) -> Result<GcState, ActorProcessingErr> {
        let timer = myself.send_interval(args.interval, || GcMsg::Tick);
        Ok(GcState {
            store: args.store,
            goals: args.goals,
            bytes_max: args.bytes_max,
            _timer: AbortOnDrop(timer),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<GcMsg>,
        message: GcMsg,
        state: &mut GcState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GcMsg::Tick => {
                let goals = state
                    .goals
                    .call(|reply| GoalsMsg::Get { reply }, None)
                    .await?;
                if let ractor::rpc::CallResult::Success(goals) = goals {
                    let _ = state.store.cast(StoreMsg::Collect {
                        goals,
                        bytes_max: state.bytes_max,
                    });
                }
            }
        }
        Ok(())
    }
}
