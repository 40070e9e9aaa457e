//! End to end over an in-memory pipe: SHSE handshake, secretstream both ways,
//! a muxrpc duplex `sync.connect` exchanging JSON frames, then GOODBYE and the
//! secretstream final blocks. Also the async drivers' failure modes.

use core::time::Duration;

use node::transport::muxrpc::io::FrameReader;
use node::transport::muxrpc::{Body, CallId, CallType, Event, Permissions, Rpc};
use node::transport::secretstream::BoxStream;
use node::transport::shse::io::{self as shse_io, Config};
use node::transport::shse::{EphemeralSeed, HandshakeError, Identity, Remote};
use node::transport::{Token, caps::NetworkKey};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Every async test is bounded: a hang is a failure, not a stuck CI job.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

fn alice() -> Identity {
    Identity::from_seed(&[1u8; 32])
}

fn bob() -> Identity {
    Identity::from_seed(&[2u8; 32])
}

/// Runs one side of a muxrpc session until GOODBYE went both ways, then ends
/// the secretstream and checks the peer's final block arrives. Returns every
/// event the machine produced.
async fn drive<S>(
    stream: BoxStream<S>,
    mut rpc: Rpc,
    mut on_event: impl FnMut(&mut Rpc, &Event),
) -> Vec<Event>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = FrameReader::new(read);
    let mut log = Vec::new();
    loop {
        let mut out = Vec::new();
        rpc.encode_transmit(&mut out);
        if !out.is_empty() {
            write.write_all(&out).await.expect("write frames");
            write.flush().await.expect("flush");
        }
        if rpc.is_closed() {
            break;
        }
        match reader.next_frame().await.expect("read frame") {
            Some(frame) => rpc.handle_frame(frame).expect("valid frame"),
            None => rpc.handle_transport_closed(),
        }
        while let Some(event) = rpc.poll_event() {
            on_event(&mut rpc, &event);
            log.push(event);
        }
    }
    write.shutdown().await.expect("final block");
    let mut rest = Vec::new();
    reader
        .into_inner()
        .read_to_end(&mut rest)
        .await
        .expect("peer ended with the final tag");
    assert!(rest.is_empty(), "nothing after GOODBYE");
    log
}

fn phase_of(body: &Body) -> i64 {
    let value: Value = body.parse_json().expect("json body");
    value["phase"].as_i64().expect("phase")
}

#[tokio::test]
async fn handshake_secretstream_muxrpc_duplex_goodbye() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let client_config = Config::new(alice());
        let server_config = Config::new(bob());
        let token = Token([9u8; 32]);
        let mut client_rng = ChaCha20Rng::seed_from_u64(1);
        let mut server_rng = ChaCha20Rng::seed_from_u64(2);

        let connecting = shse_io::connect(client_io, &client_config, bob().public_key(), Some(token), &mut client_rng);
        let accepting = shse_io::accept(server_io, &server_config, &mut server_rng, |remote: Remote| async move {
            remote.key == alice().public_key() && remote.token == Some(Token([9u8; 32]))
        });
        let (connected, accepted) = tokio::join!(connecting, accepting);
        let (client_stream, server_saw) = connected.expect("client handshake");
        let (server_stream, client_saw) = accepted.expect("server handshake");
        assert_eq!(server_saw, Remote { key: bob().public_key(), token: Some(token) });
        assert_eq!(client_saw, Remote { key: alice().public_key(), token: Some(token) });

        // The dialer opens sync.connect and sends three phases; the listener
        // answers each with the next phase; then both end and say goodbye.
        let mut dialer = Rpc::new(Permissions::anonymous());
        let call = dialer.call(&["sync", "connect"], &[], CallType::Duplex).expect("call");
        for phase in 1..=3 {
            dialer.send(call, Body::json(&json!({"id": "tangle", "phase": phase, "payload": [0, 5]})).expect("json")).expect("send");
        }
        let mut replies = 0;
        let client = drive(client_stream, dialer, |rpc, event| match event {
            Event::Data { id, .. } if *id == call => {
                replies += 1;
                if replies == 3 {
                    rpc.end(call, None).expect("end");
                }
            }
            Event::End { id, error: None } if *id == call => rpc.close(),
            _ => {}
        });
        let server = drive(server_stream, Rpc::new(Permissions::anonymous()), |rpc, event| match event {
            Event::Data { id, body } => {
                let next = json!({"id": "tangle", "phase": phase_of(body) + 1, "payload": []});
                rpc.send(*id, Body::json(&next).expect("json")).expect("send");
            }
            Event::End { id, error: None } => rpc.end(*id, None).expect("end"),
            _ => {}
        });
        let (client_log, server_log) = tokio::join!(client, server);

        let theirs = CallId::Inbound(1);
        assert!(matches!(
            &server_log[0],
            Event::Request { id, name, call_type: CallType::Duplex, .. } if *id == theirs && name == &["sync", "connect"]
        ));
        let server_phases: Vec<i64> = server_log
            .iter()
            .filter_map(|event| match event {
                Event::Data { body, .. } => Some(phase_of(body)),
                _ => None,
            })
            .collect();
        assert_eq!(server_phases, [1, 2, 3]);
        assert_eq!(server_log[4], Event::End { id: theirs, error: None });
        assert_eq!(server_log.last(), Some(&Event::Goodbye));

        let client_phases: Vec<i64> = client_log
            .iter()
            .filter_map(|event| match event {
                Event::Data { body, .. } => Some(phase_of(body)),
                _ => None,
            })
            .collect();
        assert_eq!(client_phases, [2, 3, 4]);
        assert_eq!(client_log[3], Event::End { id: call, error: None });
        assert_eq!(client_log.last(), Some(&Event::Goodbye));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn refused_client_sees_the_server_hang_up() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (mut client_io, mut server_io) = tokio::io::duplex(4096);
        let client_config = Config::new(alice());
        let server_config = Config::new(bob());
        let client = async {
            let result = shse_io::client(&mut client_io, &client_config, bob().public_key(), None, &EphemeralSeed([5; 32])).await;
            drop(client_io);
            result
        };
        let server = async {
            let result = shse_io::server(&mut server_io, &server_config, &EphemeralSeed([6; 32]), |_remote| async { false }).await;
            drop(server_io); // JS drops the connection on refusal
            result
        };
        let (client, server) = tokio::join!(client, server);
        assert!(matches!(server, Err(HandshakeError::Unauthorized { remote }) if remote == alice().public_key()), "{server:?}");
        assert!(matches!(client, Err(HandshakeError::ServerHungUp)), "{client:?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn wrong_network_key_is_rejected_by_the_server() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (mut client_io, mut server_io) = tokio::io::duplex(4096);
        let mut client_config = Config::new(alice());
        client_config.network_key = NetworkKey([0x42; 32]);
        let server_config = Config::new(bob());
        let client = async {
            let result = shse_io::client(
                &mut client_io,
                &client_config,
                bob().public_key(),
                None,
                &EphemeralSeed([5; 32]),
            )
            .await;
            drop(client_io);
            result
        };
        let server = async {
            let result = shse_io::server(
                &mut server_io,
                &server_config,
                &EphemeralSeed([6; 32]),
                |_remote| async { true },
            )
            .await;
            drop(server_io);
            result
        };
        let (client, server) = tokio::join!(client, server);
        assert!(
            matches!(server, Err(HandshakeError::WrongNetworkKey)),
            "{server:?}"
        );
        assert!(
            matches!(client, Err(HandshakeError::UnexpectedEof { .. })),
            "{client:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn wrong_server_key_fails_on_both_sides() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (mut client_io, mut server_io) = tokio::io::duplex(4096);
        let client_config = Config::new(alice());
        let server_config = Config::new(bob());
        let carol = Identity::from_seed(&[4u8; 32]).public_key();
        let client = async {
            let result = shse_io::client(
                &mut client_io,
                &client_config,
                carol,
                None,
                &EphemeralSeed([5; 32]),
            )
            .await;
            drop(client_io);
            result
        };
        let server = async {
            let result = shse_io::server(
                &mut server_io,
                &server_config,
                &EphemeralSeed([6; 32]),
                |_remote| async { true },
            )
            .await;
            drop(server_io);
            result
        };
        let (client, server) = tokio::join!(client, server);
        assert!(
            matches!(server, Err(HandshakeError::ServerKeyMismatch)),
            "{server:?}"
        );
        assert!(
            matches!(client, Err(HandshakeError::ServerHungUp)),
            "{client:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn silent_server_times_out() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (mut client_io, _silent) = tokio::io::duplex(4096);
        let mut config = Config::new(alice());
        config.timeout = Duration::from_millis(50);
        let result = shse_io::client(
            &mut client_io,
            &config,
            bob().public_key(),
            None,
            &EphemeralSeed([5; 32]),
        )
        .await;
        assert!(
            matches!(result, Err(HandshakeError::Timeout(d)) if d == Duration::from_millis(50)),
            "{result:?}"
        );
    })
    .await
    .expect("test timed out");
}
