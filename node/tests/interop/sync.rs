//! A Rust peer (`ppppp serve`) and the JS reference (`peer.js`) sync over 127.0.0.1 with
//! SHSE + secretstream + muxrpc + pzp-sync, once with each side dialing (only the dialer's
//! goals drive which tangles are synced).
//!
//! Each side authors the same kinds of tangles: an account with a second key (and a post
//! signed by that key, made by our code on a copy of the tangles and added to the author),
//! a `post` feed (1,000 msgs on the Rust side, which the JS side pulls; 100 on the JS side,
//! whose sending is cubic), a 30-msg `news` feed the other side holds with `newest-5`, a set
//! and a dict. Then, with the connection open, both publish posts back to back and update
//! the set and the dict (realtime). At the end both hold identical tangles (msg for msg,
//! data included), sets and dicts, and each holds exactly the newest 5 news msgs of the
//! other with data, the rest of that tangle being dataless trail copies.
//!
//! The dialer's goals are given in stages (accounts, then the big feed, then the rest, then
//! its own tangles), as `interop/selftest.js` does: pzp-sync re-sends phase 1 for every
//! still-requested tangle on each record it adds (interop/README.md, quirk 3), so a JS dialer
//! pulling 1,000 msgs would otherwise re-run every small exchange a thousand times.

use std::time::Duration;

use proto::keys::Keypair;
use serde_json::{Value, json};

use crate::harness::{JsPeer, RustPeer};
use crate::peers::{Count, Peer, Tangles, post_signed_by};

const RUST_POSTS: u64 = 1000;
const JS_POSTS: u64 = 100;
const NEWS: u64 = 30;
const NEWEST: usize = 5;
/// Longest wait for one stage (pulling 1,000 msgs into pzp-db takes ~10 s on a quiet machine).
const STAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Which side dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialer {
    Js,
    Rust,
}

/// A peer and what it authored.
struct Side {
    peer: Peer,
    ids: Tangles,
    /// How many msgs each of its tangles holds (root included) after authoring.
    sizes: Sizes,
    name: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    account: usize,
    post: usize,
    follows: usize,
    profile: usize,
}

/// Authors a side's tangles: posts, news, a second account key and a post it signs, a set
/// and a dict.
async fn author(mut peer: Peer, posts: u64, second: &Keypair) -> Side {
    let name = peer.name();
    let account = peer.account().await;
    let ids = Tangles::of(&account);
    peer.publish_many("post", &format!("{name} post #"), posts)
        .await;
    peer.publish_many("news", &format!("{name} news #"), NEWS)
        .await;

    peer.add_key(&account, second).await;
    let account_msgs = peer.msgs(&ids.account).await;
    assert_eq!(account_msgs.len(), 2, "{name}: root and the added key");
    let feed_msgs = peer.msgs(&ids.post).await;
    let post = post_signed_by(
        second,
        &account,
        &account_msgs,
        &feed_msgs,
        "post",
        json!({"text": format!("signed by {name}'s second key")}),
    );
    peer.add(&post, &ids.post).await;

    for (item, add, changes) in [
        ("alice", true, true),
        ("bob", true, true),
        ("alice", true, false),
        ("bob", false, true),
        ("carol", true, true),
    ] {
        assert_eq!(
            peer.set("follows", item, add).await,
            changes,
            "{name}: {item}"
        );
    }
    for update in [
        json!({"name": name}),
        json!({"age": 7}),
        json!({"name": format!("{name} peer")}),
    ] {
        assert!(peer.dict_update("profile", update).await);
    }
    assert!(!peer.dict_update("profile", json!({"age": 7})).await);

    let sizes = Sizes {
        account: peer.msgs(&ids.account).await.len(),
        post: peer.msgs(&ids.post).await.len(),
        follows: peer.msgs(&ids.follows).await.len(),
        profile: peer.msgs(&ids.profile).await.len(),
    };
    assert_eq!(sizes.post, usize::try_from(posts).expect("small") + 2);
    Side {
        peer,
        ids,
        sizes,
        name,
    }
}

/// Goals of one side on the other side's tangles.
async fn want_remote(peer: &mut Peer, remote: &Tangles) {
    peer.goal(&remote.account, "all").await;
    peer.goal(&remote.post, "all").await;
    peer.goal(&remote.follows, "set").await;
    peer.goal(&remote.profile, "dict").await;
    peer.goal(&remote.news, &format!("newest-{NEWEST}")).await;
}

/// Goals of one side on its own tangles (a dialer's own goals make it offer them).
async fn want_own(peer: &mut Peer, own: &Tangles) {
    peer.goal(&own.account, "all").await;
    peer.goal(&own.post, "all").await;
    peer.goal(&own.follows, "set").await;
    peer.goal(&own.profile, "dict").await;
    peer.goal(&own.news, "all").await;
}

/// Waits until `holder` has everything `author` authored (news: exactly the newest N).
async fn wait_has(holder: &mut Peer, author: &Tangles, sizes: Sizes) {
    holder
        .wait_for(
            &author.account,
            Count::AtLeast(sizes.account),
            false,
            STAGE_TIMEOUT,
        )
        .await;
    holder
        .wait_for(
            &author.post,
            Count::AtLeast(sizes.post),
            false,
            STAGE_TIMEOUT,
        )
        .await;
    holder
        .wait_for(
            &author.follows,
            Count::AtLeast(sizes.follows),
            false,
            STAGE_TIMEOUT,
        )
        .await;
    holder
        .wait_for(
            &author.profile,
            Count::AtLeast(sizes.profile),
            false,
            STAGE_TIMEOUT,
        )
        .await;
    holder
        .wait_for(&author.news, Count::Exactly(NEWEST), true, STAGE_TIMEOUT)
        .await;
}

/// Everything both peers hold, read once.
struct Views {
    rust_state: Value,
    js_state: Value,
    rust_msgs: serde_json::Map<String, Value>,
    js_msgs: serde_json::Map<String, Value>,
}

impl Views {
    fn summary(&self) -> String {
        let tangles = self.rust_state["tangles"]
            .as_object()
            .map_or(0, |t| t.len());
        format!(
            "{tangles} tangles, {} msgs on each side",
            self.rust_msgs.len()
        )
    }
}

/// Checks that both peers hold the same tangles, msgs, sets and dicts, except the news
/// feeds, where each holds the newest N of the other's with data and a dataless trail.
fn compare(views: &Views, rust_ids: &Tangles, js_ids: &Tangles) -> Result<(), String> {
    let (rust, js) = (&views.rust_state, &views.js_state);
    let tangle_ids = |state: &Value| -> Vec<String> {
        state["tangles"]
            .as_object()
            .map(|tangles| tangles.keys().cloned().collect())
            .unwrap_or_default()
    };
    if tangle_ids(rust) != tangle_ids(js) {
        return Err(format!(
            "different tangles: rust {:?}, js {:?}",
            tangle_ids(rust),
            tangle_ids(js)
        ));
    }
    let news = [&rust_ids.news, &js_ids.news];
    for tangle in tangle_ids(rust) {
        if news.contains(&&tangle) {
            continue;
        }
        if rust["tangles"][&tangle] != js["tangles"][&tangle] {
            return Err(format!(
                "tangle {tangle} differs: rust {}, js {}",
                rust["tangles"][&tangle], js["tangles"][&tangle]
            ));
        }
        for id in rust["tangles"][&tangle].as_array().into_iter().flatten() {
            let id = id.as_str().unwrap_or_default();
            if views.rust_msgs.get(id) != views.js_msgs.get(id) {
                return Err(format!(
                    "msg {id} differs: rust {:?}, js {:?}",
                    views.rust_msgs.get(id),
                    views.js_msgs.get(id)
                ));
            }
        }
    }
    if rust["sets"] != js["sets"] {
        return Err(format!(
            "sets differ: rust {}, js {}",
            rust["sets"], js["sets"]
        ));
    }
    if rust["dicts"] != js["dicts"] {
        return Err(format!(
            "dicts differ: rust {}, js {}",
            rust["dicts"], js["dicts"]
        ));
    }
    newest_n(
        "js holding rust's news",
        &rust["tangles"][&rust_ids.news],
        &views.rust_msgs,
        &js["tangles"][&rust_ids.news],
        &views.js_msgs,
    )?;
    newest_n(
        "rust holding js's news",
        &js["tangles"][&js_ids.news],
        &views.js_msgs,
        &rust["tangles"][&js_ids.news],
        &views.rust_msgs,
    )
}

/// What a `newest-N` goal implies: the holder's tangle is the author's root, its newest N
/// msgs with data, and trail msgs between them that are the author's msgs without data.
fn newest_n(
    what: &str,
    author_order: &Value,
    author_msgs: &serde_json::Map<String, Value>,
    holder_order: &Value,
    holder_msgs: &serde_json::Map<String, Value>,
) -> Result<(), String> {
    let ids = |order: &Value| -> Vec<String> {
        order
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect()
    };
    let (author, holder) = (ids(author_order), ids(holder_order));
    let newest = author
        .get(author.len().saturating_sub(NEWEST)..)
        .unwrap_or_default();
    let dataful: Vec<&String> = holder
        .iter()
        .filter(|id| {
            holder_msgs
                .get(*id)
                .is_some_and(|msg| !msg["data"].is_null())
        })
        .collect();
    if dataful != newest.iter().collect::<Vec<_>>() {
        return Err(format!(
            "{what}: dataful {dataful:?}, want the newest {newest:?}"
        ));
    }
    if holder.first() != author.first() {
        return Err(format!("{what}: the root is not first: {holder:?}"));
    }
    let mut position = 0;
    for id in &holder {
        let Some(found) = author.iter().skip(position).position(|a| a == id) else {
            return Err(format!(
                "{what}: {id} is not in the author's order {author:?}"
            ));
        };
        position += found + 1;
        let (Some(held), Some(original)) = (holder_msgs.get(id), author_msgs.get(id)) else {
            return Err(format!("{what}: {id} missing"));
        };
        let mut trail = original.clone();
        trail["data"] = Value::Null;
        if held != original && *held != trail {
            return Err(format!("{what}: {id} is {held}, author has {original}"));
        }
    }
    Ok(())
}

async fn views(rust: &mut Peer, js: &mut Peer) -> Views {
    Views {
        rust_state: rust.state().await,
        js_state: js.state().await,
        rust_msgs: rust.all_msgs().await,
        js_msgs: js.all_msgs().await,
    }
}

/// Polls until both peers agree (see [`compare`]); returns the agreed views.
async fn agree(rust: &mut Peer, js: &mut Peer, rust_ids: &Tangles, js_ids: &Tangles) -> Views {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let views = views(rust, js).await;
        match compare(&views, rust_ids, js_ids) {
            Ok(()) => return views,
            Err(difference) => assert!(
                tokio::time::Instant::now() < deadline,
                "the peers disagree: {difference}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn expected_values(views: &Views, rust_ids: &Tangles, js_ids: &Tangles, realtime: bool) {
    let mut items = vec!["alice", "carol"];
    if realtime {
        items.push("dave");
    }
    for (ids, name) in [(rust_ids, "rust"), (js_ids, "js")] {
        let key = |sub: &str| format!("{}/{sub}", ids.account);
        assert_eq!(
            views.rust_state["sets"][key("follows")],
            json!(items),
            "{name}'s set"
        );
        let mut dict = json!({"name": format!("{name} peer"), "age": 7});
        if realtime {
            dict["mood"] = json!("happy");
        }
        assert_eq!(
            views.rust_state["dicts"][key("profile")],
            dict,
            "{name}'s dict"
        );
    }
}

async fn scenario(dialer: Dialer) {
    let started = tokio::time::Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
    let dirs = tempfile::tempdir().expect("temp dir");
    let rust = Peer::Rust(RustPeer::start("rust", &dirs.path().join("rust")).await);
    let js = Peer::Js(JsPeer::start("js", [0x0b; 32]).await);
    let rust = author(rust, RUST_POSTS, &Keypair::from_seed(&[0x1a; 32])).await;
    step("rust authored");
    let js = author(js, JS_POSTS, &Keypair::from_seed(&[0x2a; 32])).await;
    step("js authored");

    let (mut dialing, mut responding) = match dialer {
        Dialer::Js => (js, rust),
        Dialer::Rust => (rust, js),
    };
    // The responder's goals only shape what it accepts; give them all now.
    want_remote(&mut responding.peer, &dialing.ids).await;
    want_own(&mut responding.peer, &responding.ids).await;

    // Stage 1: the remote account.
    dialing.peer.goal(&responding.ids.account, "all").await;
    let address = responding.peer.address().to_owned();
    dialing.peer.dial(&address).await;
    dialing
        .peer
        .wait_for(
            &responding.ids.account,
            Count::AtLeast(responding.sizes.account),
            false,
            STAGE_TIMEOUT,
        )
        .await;
    step(&format!("{} dialed; has the remote account", dialing.name));

    // Stage 2: the remote post feed.
    dialing.peer.goal(&responding.ids.post, "all").await;
    dialing
        .peer
        .wait_for(
            &responding.ids.post,
            Count::AtLeast(responding.sizes.post),
            false,
            STAGE_TIMEOUT,
        )
        .await;
    step(&format!(
        "{} pulled {} msgs of the remote post feed",
        dialing.name, responding.sizes.post
    ));

    // Stage 3: the rest of the remote's tangles.
    want_remote(&mut dialing.peer, &responding.ids).await;
    wait_has(&mut dialing.peer, &responding.ids, responding.sizes).await;
    step(&format!("{} has all of the remote's tangles", dialing.name));

    // Stage 4: the dialer offers its own tangles.
    want_own(&mut dialing.peer, &dialing.ids).await;
    wait_has(&mut responding.peer, &dialing.ids, dialing.sizes).await;
    step(&format!(
        "{} (responding) has all of the dialer's tangles",
        responding.name
    ));

    let (mut rust, mut js) = match dialer {
        Dialer::Js => (responding, dialing),
        Dialer::Rust => (dialing, responding),
    };
    let views = agree(&mut rust.peer, &mut js.peer, &rust.ids, &js.ids).await;
    expected_values(&views, &rust.ids, &js.ids, false);
    step(&format!(
        "states agree after the initial sync ({})",
        views.summary()
    ));

    // Realtime, both ways: posts back to back, a set add, a dict update.
    for side in [&mut rust, &mut js] {
        for index in 1..=3 {
            side.peer
                .publish(
                    "post",
                    json!({"text": format!("{} realtime #{index}", side.name)}),
                )
                .await;
        }
        assert!(side.peer.set("follows", "dave", true).await);
        assert!(
            side.peer
                .dict_update("profile", json!({"mood": "happy"}))
                .await
        );
    }
    let grown = |sizes: Sizes| Sizes {
        post: sizes.post + 3,
        follows: sizes.follows + 1,
        profile: sizes.profile + 1,
        ..sizes
    };
    wait_has(&mut rust.peer, &js.ids, grown(js.sizes)).await;
    wait_has(&mut js.peer, &rust.ids, grown(rust.sizes)).await;
    let views = agree(&mut rust.peer, &mut js.peer, &rust.ids, &js.ids).await;
    expected_values(&views, &rust.ids, &js.ids, true);
    step(&format!(
        "realtime msgs arrived both ways; states agree ({})",
        views.summary()
    ));

    rust.peer.stop().await;
    js.peer.stop().await;
    step("both stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_dials_rust_and_both_end_identical() {
    scenario(Dialer::Js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_dials_js_and_both_end_identical() {
    scenario(Dialer::Rust).await;
}
