//! The goals actor: the node's table of tangle goals (`all`, `newest-N`, `set`, `dict`,
//! `none`). Changes go to the sync actor, which re-requests affected tangles; the GC actor
//! reads the table to decide what each msg is for.

use proto::goals::Goals;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msgs::{GoalsMsg, SyncActorMsg};

/// The goals actor.
pub(crate) struct GoalsActor;

pub(crate) struct GoalsArgs {
    pub(crate) goals: Goals,
    pub(crate) sync: ActorRef<SyncActorMsg>,
}

pub(crate) struct GoalsState {
    goals: Goals,
    sync: ActorRef<SyncActorMsg>,
}

impl Actor for GoalsActor {
    type Msg = GoalsMsg;
    type State = GoalsState;
    type Arguments = GoalsArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<GoalsMsg>,
        args: GoalsArgs,
    ) -> Result<GoalsState, ActorProcessingErr> {
        Ok(GoalsState {
            goals: args.goals,
            sync: args.sync,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<GoalsMsg>,
        message: GoalsMsg,
        state: &mut GoalsState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GoalsMsg::Set {
                tangle,
                goal,
                reply,
            } => {
                let result = state.goals.set(tangle, goal);
                if result.is_ok() {
                    let _ = state.sync.cast(SyncActorMsg::SetGoal { tangle, goal });
                }
                let _ = reply.send(result);
            }
            GoalsMsg::Get { reply } => {
                let _ = reply.send(state.goals.clone());
            }
        }
        Ok(())
    }
}
