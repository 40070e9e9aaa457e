//! Invites and promises with the JS reference (pzp-invite 1.0.0, pzp-promise 1.0.0, npm):
//! each side uses the other's invite URI through a `ppppp hub` that admits only members and
//! token holders (no `--open`), and a spent or forged promise token is refused.

use std::time::Duration;

use serde_json::{Value, json};

use crate::discovery::{ARRIVAL_MS, ARRIVAL_TIMEOUT, js_with_hubs, rust_waits_for, rust_with_post};
use crate::harness::{Hub, RustPeer};

async fn rust_key(peer: &mut RustPeer) -> String {
    peer.ask(json!({"cmd": "whoami"})).await["key"]
        .as_str()
        .expect("key")
        .to_owned()
}

/// Waits until `hub` lists `count` attendants.
async fn attendants_reach(hub: &mut Hub, count: usize) {
    let deadline = tokio::time::Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        let status = hub.status().await;
        if status["attendants"].as_array().map_or(0, Vec::len) >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "attendants: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn command<'a>(commands: &'a Value, kind: &str) -> &'a Value {
    commands
        .as_array()
        .expect("commands")
        .iter()
        .find(|command| command["type"] == json!(kind))
        .unwrap_or_else(|| panic!("no {kind} command in {commands}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_peer_uses_a_ppppp_invite_and_the_promise_is_spent_once() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&dirs.path().join("hub"), &[]).await;
    // The first peer ever to reach a closed hub becomes its member (as ppppp-hub does).
    let (mut inviter, inviter_account, inviter_feed) = rust_with_post(
        "inviter",
        &dirs.path().join("inviter"),
        &["--hub", &hub.multiaddr],
    )
    .await;
    let inviter_key = rust_key(&mut inviter).await;
    attendants_reach(&mut hub, 1).await;
    let invite = inviter.ask(json!({"cmd": "invite_create"})).await;
    let uri = invite["uri"].as_str().expect("uri").to_owned();

    let (mut js, js_account, js_feed) = js_with_hubs("invitee", 0x1d).await;
    // pzp-invite reads our URI as we meant it.
    let commands = js.call("inviteParse", json!({"uri": uri})).await["commands"].clone();
    assert_eq!(
        command(&commands, "follow")["id"],
        json!(inviter_account),
        "{uri}"
    );
    let promise = command(&commands, "promise.follow");
    assert_eq!(promise["issuer"], json!(["pubkey", inviter_key]), "{uri}");
    let token = promise["token"].as_str().expect("token").to_owned();
    let join = command(&commands, "join")["multiaddr"].clone();

    // The app's steps for those commands: attend with the hub token, want the inviter,
    // reach it through the hub, redeem.
    js.call("addHub", json!({"multiaddr": join})).await;
    js.call("goal", json!({"tangleID": inviter_account, "goal": "all"}))
        .await;
    js.call("goal", json!({"tangleID": inviter_feed, "goal": "all"}))
        .await;
    let tunnel = format!("/tunnel/{}.{inviter_key}/shse/{inviter_key}", hub.key);
    js.call("netConnect", json!({"multiaddr": tunnel})).await;
    let redeem = json!({"pubkey": inviter_key, "token": token, "account": js_account});
    let first = js.call("promiseFollow", redeem.clone()).await;
    assert_eq!(first["result"], json!(true));
    let again = js.try_call("promiseFollow", redeem).await;
    assert_eq!(again["ok"], json!(false), "a spent promise: {again}");
    assert!(
        again["error"]
            .as_str()
            .is_some_and(|e| e.contains("Invalid token")),
        "{again}"
    );
    let forged = json!({"pubkey": inviter_key, "token": "1".repeat(44), "account": js_account});
    let forged = js.try_call("promiseFollow", forged).await;
    assert_eq!(forged["ok"], json!(false), "a forged token: {forged}");

    // The inviter follows back: it replicates the invitee's feed, and the invitee its.
    rust_waits_for(&mut inviter, &js_feed, 2).await;
    js.call(
        "waitFor",
        json!({"tangleID": inviter_feed, "count": 2, "timeoutMs": ARRIVAL_MS}),
    )
    .await;
    let status = inviter.ask(json!({"cmd": "status"})).await;
    assert!(
        status.to_string().contains(&js_account),
        "follows: {status}"
    );
    js.stop().await;
    inviter.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ppppp_peer_uses_a_js_invite_and_is_followed_back() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&dirs.path().join("hub"), &[]).await;
    let (mut js, js_account, js_feed) = js_with_hubs("inviter", 0x1e).await;
    js.call("addHub", json!({"multiaddr": hub.multiaddr})).await;
    attendants_reach(&mut hub, 1).await;
    let invite = js
        .call(
            "inviteForFriend",
            json!({"hub": hub.multiaddr, "account": js_account}),
        )
        .await;
    let uri = invite["uri"].as_str().expect("uri").to_owned();

    let (mut rust, rust_account, rust_feed) =
        rust_with_post("invitee", &dirs.path().join("invitee"), &[]).await;
    let used = rust.ask(json!({"cmd": "invite_use", "uri": uri})).await;
    assert_eq!(
        used["done"].as_array().and_then(|done| done.last()),
        Some(&json!({"promise.follow": true})),
        "{used}"
    );
    // We follow the inviter and get its feed; it followed us back (pzp-promise added us to
    // its follows set) and wants ours once it follows.
    rust_waits_for(&mut rust, &js_feed, 2).await;
    let follows = js.call("setValues", json!({"subdomain": "follows"})).await;
    assert!(
        follows["values"]
            .as_array()
            .is_some_and(|values| values.contains(&json!(rust_account))),
        "{follows}"
    );
    js.call("goal", json!({"tangleID": rust_feed, "goal": "all"}))
        .await;
    js.call(
        "waitFor",
        json!({"tangleID": rust_feed, "count": 2, "timeoutMs": ARRIVAL_MS}),
    )
    .await;
    // The same invite again: the hub token is spent and so is the promise.
    let again = rust.try_ask(json!({"cmd": "invite_use", "uri": uri})).await;
    assert_eq!(again["ok"], json!(false), "{again}");
    rust.stop().await;
    js.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_device_joins_a_ppppp_account_through_an_account_add_invite() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&dirs.path().join("hub"), &[]).await;
    let (mut inviter, inviter_account, _) = rust_with_post(
        "inviter",
        &dirs.path().join("inviter"),
        &["--hub", &hub.multiaddr],
    )
    .await;
    let inviter_key = rust_key(&mut inviter).await;
    attendants_reach(&mut hub, 1).await;
    let invite = inviter
        .ask(json!({"cmd": "invite_create", "promise": "account-add"}))
        .await;
    let uri = invite["uri"].as_str().expect("uri").to_owned();

    let (mut device, _, _) = js_with_hubs("device", 0x1f).await;
    let commands = device.call("inviteParse", json!({"uri": uri})).await["commands"].clone();
    let tunnel = command(&commands, "tunnel-connect")["multiaddr"].clone();
    assert_eq!(
        tunnel,
        json!(format!(
            "/tunnel/{}.{inviter_key}/shse/{inviter_key}",
            hub.key
        )),
        "{uri}"
    );
    let promise = command(&commands, "promise.account-add");
    assert_eq!(promise["issuer"], json!(["pubkey", inviter_key]), "{uri}");
    let token = promise["token"].as_str().expect("token").to_owned();
    let join = command(&commands, "join")["multiaddr"].clone();

    device.call("addHub", json!({"multiaddr": join})).await;
    device
        .call("netConnect", json!({"multiaddr": tunnel}))
        .await;
    let redeem = json!({"pubkey": inviter_key, "token": token, "account": inviter_account});
    let first = device.call("promiseAccountAdd", redeem.clone()).await;
    assert_eq!(first["result"], json!(true));
    let again = device.try_call("promiseAccountAdd", redeem).await;
    assert_eq!(again["ok"], json!(false), "a spent promise: {again}");

    // The inviter's account now lists the device's key (an account msg with no powers).
    let added = inviter
        .msgs(&inviter_account)
        .await
        .into_iter()
        .any(|msg| msg["data"]["key"]["bytes"] == json!(device.key));
    assert!(added, "the device's key is not in {inviter_account}");
    device.stop().await;
    inviter.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ppppp_device_joins_a_js_account_through_its_account_add_invite() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&dirs.path().join("hub"), &[]).await;
    let (mut js, js_account, js_feed) = js_with_hubs("inviter", 0x20).await;
    js.call("addHub", json!({"multiaddr": hub.multiaddr})).await;
    attendants_reach(&mut hub, 1).await;
    let invite = js
        .call(
            "inviteForMyself",
            json!({"hub": hub.multiaddr, "account": js_account}),
        )
        .await;
    let uri = invite["uri"].as_str().expect("uri").to_owned();

    let (mut device, former, _) = rust_with_post("device", &dirs.path().join("device"), &[]).await;
    // pzp-invite's URI does not name the account, and a JS inviter cannot be asked for it.
    let unnamed = device
        .try_ask(json!({"cmd": "invite_use", "uri": uri}))
        .await;
    assert_eq!(unnamed["ok"], json!(false), "{unnamed}");
    assert!(
        unnamed["error"]
            .as_str()
            .is_some_and(|error| error.contains("give the account")),
        "{unnamed}"
    );
    let used = device
        .ask(json!({"cmd": "invite_use", "uri": uri, "account": js_account}))
        .await;
    assert_eq!(
        used["done"].as_array().and_then(|done| done.last()),
        Some(&json!({"promise.account-add": js_account})),
        "{used}"
    );
    let whoami = device.ask(json!({"cmd": "whoami"})).await;
    assert_eq!(whoami["account"], json!(js_account));
    assert_ne!(whoami["account"], json!(former));

    // The device replicates the JS account's feed as its own, and posts in it.
    rust_waits_for(&mut device, &js_feed, 2).await;
    let published = device
        .ask(json!({"cmd": "publish", "domain": "post", "data": {"text": "from the device"}}))
        .await;
    assert_eq!(published["feed"], json!(js_feed), "{published}");
    // The JS peer takes the device's post once it wants its own account and feed: pzp-sync
    // asks only for tangles with a goal, and this JS peer set none on what it authors.
    js.call("goal", json!({"tangleID": js_account, "goal": "all"}))
        .await;
    js.call("goal", json!({"tangleID": js_feed, "goal": "all"}))
        .await;
    js.call(
        "waitFor",
        json!({"tangleID": js_feed, "count": 3, "timeoutMs": 20000}),
    )
    .await;
    device.stop().await;
    js.stop().await;
    hub.stop().await;
}
