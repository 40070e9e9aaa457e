//! Invites in a running peer, as pzp-invite 1.0.0 and pzp-promise 1.0.0 do them: `invite
//! create` asks a hub for a membership token, makes a follow promise and writes the URI;
//! `invite use` carries out a URI's commands (attend the hub with its token, follow the
//! inviter, redeem the promise through a tunnel to the inviter; or, for an account-add invite,
//! have this peer's key added to the inviter's account and become a device of it); remotes
//! redeem our promises with the muxrpc methods `promise.follow(token, account)` and
//! `promise.accountAdd(token, {key, consent})`.
//!
//! A device joining an account must sign its consent to that account, but pzp-invite's
//! account-add URI does not name the account. `invite use` takes it from its `account` field,
//! or asks the inviter with `promise.account(token)`, a ppppp method that names the account of
//! an open account-add promise (a JS inviter does not have it: give the account then).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proto::goals::Goal;
use proto::ids::{AccountId, PubKey};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::execute::Control;
use crate::invite::promise::{Promise, PromiseError, PromiseKind};
use crate::invite::uri::{self, Command, Issuer};
use crate::peer::{AbortOnDrop, AppMethods, AppRequest, DialTarget, NodeError, PeerState};
use crate::transport::addr::{Address, Shse};
use crate::transport::{PublicKey, Token};

/// The app methods a peer serves for promises.
const PROMISE_FOLLOW: [&str; 2] = ["promise", "follow"];
const PROMISE_ACCOUNT_ADD: [&str; 2] = ["promise", "accountAdd"];
/// ppppp's own: the account an open account-add promise adds keys to.
const PROMISE_ACCOUNT: [&str; 2] = ["promise", "account"];
/// The feed an invite's follow replicates, with `ppppp follow`'s defaults.
const FOLLOW_DOMAIN: &str = "post";
/// Longest wait for the tunnel to an inviter before redeeming its promise.
const ISSUER_CONNECT_WAIT: Duration = Duration::from_secs(30);
/// Longest wait for the inviter's answer to a redemption.
const REDEEM_WAIT: Duration = Duration::from_secs(30);
/// How often `invite use` looks whether the tunnel to the inviter is up.
const ISSUER_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Longest wait, once the inviter added this peer's key, for its account tangle to arrive.
const ACCOUNT_SYNC_WAIT: Duration = Duration::from_secs(30);

/// The control commands `invite_create` and `invite_use`.
impl Control {
    pub(super) async fn invite_create(
        &self,
        hub: Option<&str>,
        kind: PromiseKind,
    ) -> anyhow::Result<Value> {
        create(self, hub, kind).await
    }

    pub(super) async fn invite_use(
        &self,
        uri: &str,
        account: Option<AccountId>,
    ) -> anyhow::Result<Value> {
        use_invite(self, uri, account).await
    }
}

/// The app methods `ppppp serve` offers remotes, and where their requests arrive.
pub(crate) fn app_methods() -> (AppMethods, mpsc::Receiver<AppRequest>) {
    AppMethods::new(&[&PROMISE_FOLLOW, &PROMISE_ACCOUNT_ADD, &PROMISE_ACCOUNT])
}

/// Answers remotes' promise redemptions, one at a time, until the node stops.
pub(crate) fn serve_promises(
    control: Arc<Control>,
    mut requests: mpsc::Receiver<AppRequest>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let answered = if request.name == PROMISE_FOLLOW {
                redeem_follow(&control, &request.args)
                    .await
                    .map(Value::Bool)
            } else if request.name == PROMISE_ACCOUNT_ADD {
                redeem_account_add(&control, &request.args)
                    .await
                    .map(Value::Bool)
            } else if request.name == PROMISE_ACCOUNT {
                promised_account(&control, &request.args).map(Value::String)
            } else {
                Err(anyhow::anyhow!("no method {}", request.name.join(".")))
            };
            let answer = answered.map_err(|error| format!("{error:#}"));
            if let Err(error) = &answer {
                tracing::debug!(target: "ppppp::invite", remote = %request.remote, %error, "promise refused");
            }
            request.reply.send(answer);
        }
    }))
}

/// `promise.follow(token, account)`: follows `account` once per promise; `false` if it was
/// followed already (the promise is spent either way, as in pzp-promise).
async fn redeem_follow(control: &Control, args: &[Value]) -> anyhow::Result<bool> {
    let (Some(Value::String(token)), Some(Value::String(account))) = (args.first(), args.get(1))
    else {
        anyhow::bail!("promise.follow takes (token, accountID)");
    };
    let token = Token::from_base58(token).map_err(|_| PromiseError::Unknown)?;
    let account = AccountId::parse(account).context("bad account ID")?;
    control.promises.begin(&token, PromiseKind::Follow)?;
    let followed = control
        .follow(account, FOLLOW_DOMAIN, Goal::All)
        .await
        .map(|value| !value["msg"].is_null());
    match followed {
        Ok(new) => {
            control.promises.finish(&token)?;
            Ok(new)
        }
        Err(error) => {
            control.promises.abandon(&token);
            Err(error)
        }
    }
}

/// `promise.accountAdd(token, {key: {purpose, algorithm, bytes}, consent})`: adds the key to
/// our account once per promise; `false` (the promise kept) if the account has it already,
/// as in pzp-promise.
async fn redeem_account_add(control: &Control, args: &[Value]) -> anyhow::Result<bool> {
    let (Some(Value::String(token)), Some(addition)) = (args.first(), args.get(1)) else {
        anyhow::bail!("promise.accountAdd takes (token, {{key, consent}})");
    };
    let (key, consent) = key_addition(addition)?;
    let token = Token::from_base58(token).map_err(|_| PromiseError::Unknown)?;
    control.promises.begin(&token, PromiseKind::AccountAdd)?;
    let account = control.node.account();
    let has = match control.node.tangle_msgs(account).await {
        Ok(msgs) => {
            proto::account::powers(msgs.iter().map(AsRef::as_ref)).contains_key(key.as_str())
        }
        Err(error) => {
            control.promises.abandon(&token);
            return Err(error.into());
        }
    };
    if has {
        control.promises.abandon(&token);
        return Ok(false);
    }
    match control.node.account_add(key, consent, Vec::new()).await {
        Ok(_) => {
            control.promises.finish(&token)?;
            Ok(true)
        }
        Err(error) => {
            control.promises.abandon(&token);
            Err(error.into())
        }
    }
}

/// `promise.account(token)`: the account an open account-add promise adds keys to (so the
/// new device can sign its consent). The promise stays open.
fn promised_account(control: &Control, args: &[Value]) -> anyhow::Result<String> {
    let Some(Value::String(token)) = args.first() else {
        anyhow::bail!("promise.account takes (token)");
    };
    let token = Token::from_base58(token).map_err(|_| PromiseError::Unknown)?;
    let promise = control.promises.begin(&token, PromiseKind::AccountAdd)?;
    control.promises.abandon(&token);
    Ok(promise.account)
}

/// The key and consent of an account addition, checked as pzp-promise checks them (only
/// Ed25519 signing keys can be added to an account here).
fn key_addition(addition: &Value) -> anyhow::Result<(PubKey, String)> {
    let consent = addition["consent"]
        .as_str()
        .with_context(|| format!("Invalid key to be added, missing \"consent\": {addition}"))?;
    let key = &addition["key"];
    let (Some(purpose), Some(algorithm), Some(bytes)) = (
        key["purpose"].as_str(),
        key["algorithm"].as_str(),
        key["bytes"].as_str(),
    ) else {
        anyhow::bail!("Invalid key to be added, missing purpose/algorithm/bytes: {addition}");
    };
    anyhow::ensure!(
        matches!(purpose, "sig" | "shs-and-sig") && algorithm == "ed25519",
        "Invalid key to be added, expected purpose \"sig\" or \"shs-and-sig\" with algorithm \"ed25519\": {addition}"
    );
    let key = PubKey::parse(bytes).context("the key to be added is not base58 of 32 bytes")?;
    Ok((key, consent.to_owned()))
}

/// `invite create`: a URI that makes its user attend our hub and then either follow us and be
/// followed back (`Follow`, pzp-invite's `createForFriend`) or reach us through the hub and
/// have its key added to our account (`AccountAdd`, `createForMyself`). `hub`: which hub
/// (its key; default the first connected one).
async fn create(control: &Control, hub: Option<&str>, kind: PromiseKind) -> anyhow::Result<Value> {
    let hubs = control
        .hubs
        .as_ref()
        .context("invites need hubs, and a plaintext peer has none")?;
    let listed = hubs.client.hubs().await.map_err(anyhow::Error::msg)?;
    let wanted = hub
        .map(PublicKey::from_base58)
        .transpose()
        .context("bad hub key")?;
    let chosen = listed
        .iter()
        .find(|info| info.connected && wanted.is_none_or(|key| key == info.key))
        .context("not attending that hub now (`ppppp serve --hub ADDRESS`)")?;
    let hub_token = hubs
        .client
        .create_token(chosen.key)
        .await
        .map_err(anyhow::Error::msg)
        .context("the hub made no token")?;
    let mut join: Address = chosen.address.parse().context("the hub's address")?;
    join.shse = Some(Shse {
        key: chosen.key,
        token: Some(Token::from_base58(&hub_token).context("the hub's token")?),
    });
    let account = control.node.account();
    let token = control.promises.create(Promise {
        kind,
        account: account.to_string(),
        expires: None,
    })?;
    let me = PublicKey::from(&control.node.key());
    let issuer = Issuer(me);
    let commands = match kind {
        PromiseKind::Follow => [
            Command::Join(join),
            Command::Follow(account.to_string()),
            Command::PromiseFollow { issuer, token },
        ],
        PromiseKind::AccountAdd => [
            Command::Join(join),
            Command::TunnelConnect {
                hub: chosen.key,
                target: me,
            },
            Command::PromiseAccountAdd { issuer, token },
        ],
    };
    Ok(json!({"uri": uri::to_uri(&commands), "url": uri::to_web_link(&commands)}))
}

/// `invite use URI`: carries out its commands in order; what each did. `account`: the account
/// an account-add invite adds this peer to (asked of the inviter if not given).
async fn use_invite(
    control: &Control,
    text: &str,
    account: Option<AccountId>,
) -> anyhow::Result<Value> {
    let commands = uri::parse(text)?;
    let mut hub = None;
    let mut done = Vec::new();
    for command in commands {
        let step = match command {
            Command::Join(address) => {
                hub = address.shse.as_ref().map(|shse| shse.key);
                let hubs = control
                    .hubs
                    .as_ref()
                    .context("a plaintext peer cannot join hubs")?;
                hubs.add(address.clone()).await?;
                json!({"join": address.to_multiaddr()})
            }
            Command::Follow(account) => {
                let account = AccountId::parse(&account).context("bad account ID")?;
                if account != control.node.account() {
                    control.follow(account, FOLLOW_DOMAIN, Goal::All).await?;
                }
                json!({"follow": account.to_string()})
            }
            Command::TunnelConnect { hub, target } => {
                reach(control, hub, target).await?;
                json!({"tunnel-connect": target.to_string()})
            }
            Command::PromiseFollow { issuer, token } => {
                let hub = hub.context("promise.follow needs a join command before it")?;
                let followed = redeem_remote(control, hub, issuer.0, token).await?;
                json!({"promise.follow": followed})
            }
            Command::PromiseAccountAdd { issuer, token } => {
                let hub = hub.context("promise.account-add needs a join command before it")?;
                let joined = join_issuers_account(control, hub, issuer.0, token, account).await?;
                json!({"promise.account-add": joined.to_string()})
            }
        };
        done.push(step);
    }
    Ok(json!({ "done": done }))
}

/// Dials `target` through `hub` and waits until the connection is up.
async fn reach(control: &Control, hub: PublicKey, target: PublicKey) -> anyhow::Result<()> {
    let key = PubKey::from(target);
    control
        .node
        .connect(DialTarget {
            address: format!("tunnel:{hub}:{target}"),
            key: Some(key),
        })
        .await?;
    let deadline = tokio::time::Instant::now() + ISSUER_CONNECT_WAIT;
    loop {
        let peers = control.node.peers().await?;
        if peers
            .iter()
            .any(|peer| peer.key == Some(key) && peer.state == PeerState::Connected)
        {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no tunnel to {target} through {hub} within {} s",
            ISSUER_CONNECT_WAIT.as_secs()
        );
        tokio::time::sleep(ISSUER_POLL_INTERVAL).await;
    }
}

/// Redeems `issuer`'s follow promise `token` through a tunnel of `hub`.
async fn redeem_remote(
    control: &Control,
    hub: PublicKey,
    issuer: PublicKey,
    token: Token,
) -> anyhow::Result<bool> {
    reach(control, hub, issuer).await?;
    let args = vec![
        Value::from(token.to_base58()),
        Value::from(control.node.account().to_string()),
    ];
    let answer = call_issuer(control, issuer, &PROMISE_FOLLOW, args).await?;
    answer
        .as_bool()
        .with_context(|| format!("the inviter answered {answer}, not true or false"))
}

/// Calls `method` of the inviter, refusals and silence as clear errors.
async fn call_issuer(
    control: &Control,
    issuer: PublicKey,
    method: &[&str; 2],
    args: Vec<Value>,
) -> anyhow::Result<Value> {
    let call = control.node.call(PubKey::from(issuer), method, args);
    match tokio::time::timeout(REDEEM_WAIT, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(NodeError::Call(message))) => anyhow::bail!("the inviter refused: {message}"),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => anyhow::bail!(
            "the inviter did not answer within {} s",
            REDEEM_WAIT.as_secs()
        ),
    }
}

/// Redeems `issuer`'s account-add promise `token` through a tunnel of `hub`, as pzp-promise's
/// redeemer does (`promise.accountAdd(token, {key, consent})`), then makes this peer a device
/// of that account for good: it waits for the account tangle that adds its key, records the
/// account in the peer directory, switches the node to it and replicates it as its own. The
/// peer's former account stays in the store as it is; nothing is published in it any more.
async fn join_issuers_account(
    control: &Control,
    hub: PublicKey,
    issuer: PublicKey,
    token: Token,
    account: Option<AccountId>,
) -> anyhow::Result<AccountId> {
    if let Some(joined) = super::super::joined::load(&control.dir)? {
        anyhow::bail!(
            "this peer is already a device of the account {}; it joins one account only",
            joined.account
        );
    }
    reach(control, hub, issuer).await?;
    let account = match account {
        Some(account) => account,
        None => {
            let args = vec![Value::from(token.to_base58())];
            let named = call_issuer(control, issuer, &PROMISE_ACCOUNT, args)
                .await
                .context(
                    "the invite does not name the account it adds this peer to, and the \
                     inviter did not say (a pzp app cannot): give the account to join \
                     (`--account`, the inviter's `whoami`)",
                )?;
            let named = named.as_str().with_context(|| {
                format!("the inviter named no account ({named}); give the account to join")
            })?;
            AccountId::parse(named).context("the inviter named a bad account ID")?
        }
    };
    let former = control.node.account();
    anyhow::ensure!(
        account != former,
        "{account} is this peer's own account already"
    );
    let key = control.node.key();
    let addition = json!({
        "key": {"purpose": "sig", "algorithm": "ed25519", "bytes": key.to_string()},
        "consent": proto::account::consent(&control.keypair, &account),
    });
    let args = vec![Value::from(token.to_base58()), addition];
    // `false`: the account had this key already (a use that stopped half way), so go on.
    let answer = call_issuer(control, issuer, &PROMISE_ACCOUNT_ADD, args).await?;
    anyhow::ensure!(
        answer.is_boolean(),
        "the inviter answered {answer}, not true or false"
    );
    control.node.set_goal(account, Goal::All).await?;
    wait_until_listed(control, account).await?;
    // Recorded before the switch: a crash in between restarts the peer in the new account
    // (its tangle is durable here), never back in the former one with the promise spent.
    super::super::joined::save(
        &control.dir,
        super::super::joined::Joined { account, former },
    )?;
    control.node.join_account(account).await?;
    for (tangle, goal) in super::super::follow::own_goals(&account) {
        control.node.set_goal(tangle, goal).await?;
    }
    Ok(account)
}

/// Waits until the stored tangle of `account` adds this peer's key.
async fn wait_until_listed(control: &Control, account: AccountId) -> anyhow::Result<()> {
    let key = control.node.key();
    let deadline = tokio::time::Instant::now() + ACCOUNT_SYNC_WAIT;
    loop {
        let msgs = control.node.tangle_msgs(account).await?;
        if proto::account::powers(msgs.iter().map(AsRef::as_ref)).contains_key(key.as_str()) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the inviter added this peer's key, but the account {account} that lists it did \
             not arrive within {} s",
            ACCOUNT_SYNC_WAIT.as_secs()
        );
        tokio::time::sleep(ISSUER_POLL_INTERVAL).await;
    }
}
