//! The control commands for scripts and tests (no `ppppp` command of their own): set and
//! dict writes, account keys, msgs made elsewhere, single goals, and views of the store.

use proto::ids::TangleId;
use serde_json::{Value, json};

use super::request::Request;
use crate::peer::NodeHandle;

/// Answers one of the tool requests.
///
/// # Errors
/// What went wrong, for a person.
pub(super) async fn execute(node: &NodeHandle, request: Request) -> anyhow::Result<Value> {
    match request {
        Request::SetWrite {
            add,
            subdomain,
            value,
        } => {
            let changed = if add {
                node.set_add(&subdomain, &value).await?
            } else {
                node.set_del(&subdomain, &value).await?
            };
            let tangle = proto::set::feed_id(&node.account(), &subdomain);
            Ok(written(changed, tangle))
        }
        Request::DictUpdate { subdomain, update } => {
            let changed = node.dict_update(&subdomain, update).await?;
            let tangle = proto::dict::feed_id(&node.account(), &subdomain);
            Ok(written(changed, tangle))
        }
        Request::AccountAdd {
            key,
            consent,
            powers,
        } => {
            let id = node.account_add(key, consent, powers).await?;
            Ok(json!({"msg": id.to_string()}))
        }
        Request::Add { msg, tangle } => {
            let id = node.add(*msg, tangle).await?;
            Ok(json!({"msg": id.to_string()}))
        }
        Request::Goal { tangle, goal } => {
            node.set_goal(tangle, goal).await?;
            Ok(json!({}))
        }
        Request::State => Ok(json!({"state": serde_json::to_value(node.snapshot().await?)?})),
        Request::Connections => Ok(json!({"count": node.connections().await?})),
        Request::Count { tangle } => {
            let (count, dataful) = node.tangle_size(tangle).await?;
            Ok(json!({"count": count, "dataful": dataful}))
        }
        Request::Msgs { tangle } => {
            let msgs: Vec<Value> = node
                .tangle_msgs(tangle)
                .await?
                .iter()
                .map(|msg| msg.to_value())
                .collect();
            Ok(json!({"msgs": msgs}))
        }
        _ => anyhow::bail!("invariant: only tool requests come here"),
    }
}

/// The answer to a set or dict write.
fn written(changed: Option<proto::ids::MsgId>, tangle: TangleId) -> Value {
    json!({
        "changed": changed.is_some(),
        "tangle": tangle.to_string(),
        "msg": changed.map(|id| id.to_string()),
    })
}
