//! A node's refusals come back as typed errors (`NodeError` carries the error it comes
//! from), with the same text as before they were typed, and the node keeps working.

use node::peer::{NodeConfig, NodeError, Transport};
use proto::db::AddError;
use proto::keys::Keypair;
use proto::msg::CreateError;
use proto::publish::PublishError;
use serde_json::json;

use crate::support::start;

#[tokio::test]
async fn refused_writes_and_adds_are_typed_and_harmless() {
    let (alice, _) = start(31, Transport::Plaintext, Vec::new()).await;
    let (bob, _) = start(32, Transport::Plaintext, Vec::new()).await;

    let error = alice
        .publish("post", json!(42))
        .await
        .expect_err("a number is not msg data");
    assert!(
        matches!(
            &error,
            NodeError::Write(PublishError::Create(CreateError::DataType))
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "cannot create msg: data must be an object, a string or null"
    );

    // Bob does not know alice's account, so her post is refused, and says why in the
    // reason's words (not the `AddError` display, which prefixes it).
    let post = alice
        .publish("post", json!({"text": "hi"}))
        .await
        .expect("publish after a refusal");
    let feed = proto::msg::feed_id(&alice.account(), "post");
    let msg = alice
        .tangle_msgs(feed)
        .await
        .expect("alice's feed")
        .into_iter()
        .find(|msg| msg.id() == post)
        .expect("the post is in its feed");
    let error = bob
        .add(std::sync::Arc::unwrap_or_clone(msg), Some(feed))
        .await
        .expect_err("an unknown account's msg");
    let NodeError::Add(refused) = &error else {
        panic!("not an Add refusal: {error:?}");
    };
    assert!(
        matches!(refused, AddError::UnknownAccount { account } if *account == alice.account()),
        "{refused:?}"
    );
    assert_eq!(error.to_string(), refused.reason());

    assert!(
        bob.publish("post", json!({"text": "still up"}))
            .await
            .is_ok()
    );
    alice.shutdown().await.expect("alice stops");
    bob.shutdown().await.expect("bob stops");
}

#[tokio::test]
async fn a_taken_address_is_a_listen_error() {
    let (alice, _) = start(33, Transport::Plaintext, Vec::new()).await;
    let mut config = NodeConfig::new(Keypair::from_seed(&[34; 32]), 34);
    config.listen = alice.address().map(str::to_owned);
    let error = node::peer::run(
        config,
        std::sync::Arc::new(node::net::TokioNet),
        node::peer::AnyStore::new(proto::store::MemStore::new()),
    )
    .await
    .expect_err("the address is alice's");
    assert!(
        matches!(&error, NodeError::Listen(io) if io.kind() == std::io::ErrorKind::AddrInUse),
        "{error:?}"
    );
    alice.shutdown().await.expect("alice stops");
}
