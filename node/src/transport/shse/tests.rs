//! SHSE against `shse.json` (secret-handshake-ext 0.0.12 run with fixed seeds)
//! and against every way a handshake can fail.

use super::*;
use serde_json::Value;

const SHSE_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/shse.json"));

fn vector() -> Value {
    serde_json::from_str(SHSE_JSON).expect("shse.json parses")
}

fn hex_at(v: &Value, pointer: &str) -> Vec<u8> {
    let text = v.pointer(pointer).and_then(Value::as_str).expect(pointer);
    hex::decode(text).expect("hex")
}

fn arr32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("32 bytes")
}

fn alice() -> Identity {
    Identity::from_seed(&[1u8; 32])
}

fn bob() -> Identity {
    Identity::from_seed(&[2u8; 32])
}

fn carol() -> Identity {
    Identity::from_seed(&[4u8; 32])
}

/// Moves every pending byte from one machine to the other, checking that each
/// side consumes exactly what it produced.
fn client_to_server(
    client: &mut ClientHandshake,
    server: &mut ServerHandshake,
) -> Result<(), HandshakeError> {
    if let Some(bytes) = client.take_output() {
        let used = server.receive(&bytes)?;
        assert_eq!(used, bytes.len());
    }
    Ok(())
}

fn server_to_client(
    server: &mut ServerHandshake,
    client: &mut ClientHandshake,
) -> Result<(), HandshakeError> {
    if let Some(bytes) = server.take_output() {
        let used = client.receive(&bytes)?;
        assert_eq!(used, bytes.len());
    }
    Ok(())
}

#[test]
fn ephemeral_keys_match_the_vector() {
    let v = vector();
    for side in ["client", "server"] {
        let seed = EphemeralSeed(arr32(&hex_at(&v, &format!("/{side}/ephSeedHex"))));
        let ephemeral = Ephemeral::from_seed(&seed);
        assert_eq!(
            ephemeral.public.to_vec(),
            hex_at(&v, &format!("/{side}/eph/curvePkHex"))
        );
        assert_eq!(
            ephemeral.secret.to_vec(),
            hex_at(&v, &format!("/{side}/eph/curveSkHex"))
        );
        // The library makes an Ed25519 keypair first; its conversion gives the same key.
        let ed = SigningKey::from_bytes(&seed.0).verifying_key();
        assert_eq!(
            ed.to_bytes().to_vec(),
            hex_at(&v, &format!("/{side}/eph/ed25519PkHex"))
        );
        assert_eq!(
            crypto::ed25519_pk_to_curve25519(&ed.to_bytes()),
            Some(ephemeral.public)
        );
    }
    assert_eq!(
        alice().public_key().0.to_vec(),
        hex_at(&v, "/client/pubHex")
    );
    assert_eq!(bob().public_key().0.to_vec(), hex_at(&v, "/server/pubHex"));
    assert_eq!(hex_at(&v, "/appKeyHex"), NetworkKey::PZP.0.to_vec());
}

#[test]
fn identity_from_the_js_secret_key_form() {
    // keypairs.json alice: privateHex = seed ‖ public.
    let mut keypair = [1u8; 64];
    keypair[32..].copy_from_slice(alice().public_key().as_bytes());
    let identity = Identity::from_keypair_bytes(&keypair).expect("matching halves");
    assert_eq!(identity.public_key(), alice().public_key());
    keypair[40] ^= 1;
    assert!(Identity::from_keypair_bytes(&keypair).is_err());
}

#[test]
fn handshake_reproduces_the_vector_byte_for_byte() {
    let v = vector();
    let client_seed = EphemeralSeed(arr32(&hex_at(&v, "/client/ephSeedHex")));
    let server_seed = EphemeralSeed(arr32(&hex_at(&v, "/server/ephSeedHex")));
    let extra = Token(arr32(&hex_at(&v, "/clientExtraHex")));

    let mut client = ClientHandshake::new(
        NetworkKey::PZP,
        alice(),
        bob().public_key(),
        Some(extra),
        &client_seed,
    )
    .expect("bob's key is valid");
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &server_seed);
    assert_eq!(server.take_output(), None, "the server speaks second");

    let message1 = client.take_output().expect("message 1");
    assert_eq!(message1, hex_at(&v, "/clientToServerChunksHex/0"));
    assert_eq!(
        server.receive(&message1).expect("message 1 accepted"),
        CHALLENGE_LEN
    );

    let message2 = server.take_output().expect("message 2");
    assert_eq!(message2, hex_at(&v, "/serverToClientChunksHex/0"));
    assert_eq!(
        client.receive(&message2).expect("message 2 accepted"),
        CHALLENGE_LEN
    );

    let message3 = client.take_output().expect("message 3");
    assert_eq!(message3.len(), CLIENT_AUTH_LEN);
    assert_eq!(message3, hex_at(&v, "/clientToServerChunksHex/1"));
    server.receive(&message3).expect("message 3 accepted");

    let pending = server
        .pending_authorization()
        .expect("server asks to authorize");
    assert_eq!(
        pending.key.0.to_vec(),
        hex_at(&v, "/serverAuthorizeSaw/pubHex")
    );
    assert_eq!(
        pending.token.map(|t| t.0.to_vec()),
        Some(hex_at(&v, "/serverAuthorizeSaw/extraHex"))
    );
    assert_eq!(server.wanted(), 0);
    server.authorize(true).expect("authorized");

    let message4 = server.take_output().expect("message 4");
    assert_eq!(message4.len(), SERVER_ACCEPT_LEN);
    assert_eq!(message4, hex_at(&v, "/serverToClientChunksHex/1"));
    client.receive(&message4).expect("message 4 accepted");

    let client_outcome = client.take_outcome().expect("client done");
    let server_outcome = server.take_outcome().expect("server done");
    assert_eq!(
        client_outcome.keys.encrypt_key.to_vec(),
        hex_at(&v, "/clientKeys/encryptKeyHex")
    );
    assert_eq!(
        client_outcome.keys.decrypt_key.to_vec(),
        hex_at(&v, "/clientKeys/decryptKeyHex")
    );
    assert_eq!(
        server_outcome.keys.encrypt_key.to_vec(),
        hex_at(&v, "/serverKeys/encryptKeyHex")
    );
    assert_eq!(
        server_outcome.keys.decrypt_key.to_vec(),
        hex_at(&v, "/serverKeys/decryptKeyHex")
    );
    assert_eq!(
        client_outcome.remote,
        Remote {
            key: bob().public_key(),
            token: Some(extra)
        }
    );
    assert_eq!(
        server_outcome.remote,
        Remote {
            key: alice().public_key(),
            token: Some(extra)
        }
    );
}

#[test]
fn byte_by_byte_input_and_no_overread() {
    let mut client = ClientHandshake::new(
        NetworkKey::PZP,
        alice(),
        bob().public_key(),
        None,
        &EphemeralSeed([5; 32]),
    )
    .expect("valid key");
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &EphemeralSeed([6; 32]));
    let message1 = client.take_output().expect("message 1");
    for byte in &message1 {
        assert_eq!(server.receive(core::slice::from_ref(byte)).expect("ok"), 1);
    }
    // Trailing bytes (the client's secretstream header) must be left alone.
    let mut message2 = server.take_output().expect("message 2");
    message2.extend_from_slice(b"trailing");
    assert_eq!(client.receive(&message2).expect("ok"), CHALLENGE_LEN);
    client_to_server(&mut client, &mut server).expect("hello accepted");
    let pending = server.pending_authorization().expect("pending");
    assert_eq!(pending.token, None, "all-zero extra is reported as none");
    assert!(matches!(
        server.receive(b"x"),
        Err(HandshakeError::Finished)
    ));
    server.authorize(true).expect("authorized");
    server_to_client(&mut server, &mut client).expect("accept accepted");
    assert!(client.is_done() && server.is_done());
    let client_keys = client.take_outcome().expect("done").keys;
    let server_keys = server.take_outcome().expect("done").keys;
    assert_eq!(client_keys.encrypt_key, server_keys.decrypt_key);
    assert_eq!(client_keys.decrypt_key, server_keys.encrypt_key);
    assert_ne!(client_keys.encrypt_key, client_keys.decrypt_key);
}

#[test]
fn server_rejects_a_client_with_another_network_key() {
    let other = NetworkKey([9u8; 32]);
    let mut client = ClientHandshake::new(
        other,
        alice(),
        bob().public_key(),
        None,
        &EphemeralSeed([5; 32]),
    )
    .expect("valid key");
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &EphemeralSeed([6; 32]));
    let error = client_to_server(&mut client, &mut server).expect_err("wrong caps");
    assert!(
        matches!(error, HandshakeError::WrongNetworkKey),
        "{error:?}"
    );
    assert_eq!(server.take_output(), None, "nothing is sent to a stranger");
    assert!(matches!(
        server.receive(&[0; 64]),
        Err(HandshakeError::Finished)
    ));
}

#[test]
fn client_rejects_a_server_with_another_network_key() {
    let mut client = ClientHandshake::new(
        NetworkKey::PZP,
        alice(),
        bob().public_key(),
        None,
        &EphemeralSeed([5; 32]),
    )
    .expect("valid key");
    let mut server = ServerHandshake::new(NetworkKey([9u8; 32]), bob(), &EphemeralSeed([6; 32]));
    // Feed the server a challenge made under its own key so that it answers.
    let mut fake = ClientHandshake::new(
        NetworkKey([9u8; 32]),
        alice(),
        bob().public_key(),
        None,
        &EphemeralSeed([5; 32]),
    )
    .expect("valid key");
    client_to_server(&mut fake, &mut server).expect("server accepts its own caps");
    let _ = client.take_output();
    let error = server_to_client(&mut server, &mut client).expect_err("wrong caps");
    assert!(
        matches!(error, HandshakeError::WrongNetworkKey),
        "{error:?}"
    );
}

#[test]
fn client_expecting_another_server_key_fails() {
    // Alice dials expecting carol, but bob answers.
    let mut client = ClientHandshake::new(
        NetworkKey::PZP,
        alice(),
        carol().public_key(),
        None,
        &EphemeralSeed([5; 32]),
    )
    .expect("valid key");
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &EphemeralSeed([6; 32]));
    client_to_server(&mut client, &mut server).expect("challenge ok");
    server_to_client(&mut server, &mut client).expect("challenge ok");
    let error = client_to_server(&mut client, &mut server).expect_err("hello must fail");
    assert!(
        matches!(error, HandshakeError::ServerKeyMismatch),
        "{error:?}"
    );
    assert_eq!(server.take_output(), None);
    // The server hangs up; that is what the client reports.
    assert!(matches!(client.peer_closed(), HandshakeError::ServerHungUp));
}

#[test]
fn authorization_refusal_sends_nothing() {
    let token = Token([7u8; 32]);
    let mut client = ClientHandshake::new(
        NetworkKey::PZP,
        alice(),
        bob().public_key(),
        Some(token),
        &EphemeralSeed([5; 32]),
    )
    .expect("valid key");
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &EphemeralSeed([6; 32]));
    client_to_server(&mut client, &mut server).expect("ok");
    server_to_client(&mut server, &mut client).expect("ok");
    client_to_server(&mut client, &mut server).expect("ok");
    assert_eq!(
        server.pending_authorization(),
        Some(Remote {
            key: alice().public_key(),
            token: Some(token)
        })
    );
    let error = server.authorize(false).expect_err("refused");
    assert!(
        matches!(error, HandshakeError::Unauthorized { remote } if remote == alice().public_key()),
        "{error:?}"
    );
    assert_eq!(server.take_output(), None);
    assert!(server.take_outcome().is_none());
    assert!(matches!(client.peer_closed(), HandshakeError::ServerHungUp));
}

#[test]
fn tampered_accept_and_bad_signatures_are_rejected() {
    let start = || {
        let mut client = ClientHandshake::new(
            NetworkKey::PZP,
            alice(),
            bob().public_key(),
            None,
            &EphemeralSeed([5; 32]),
        )
        .expect("valid key");
        let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &EphemeralSeed([6; 32]));
        client_to_server(&mut client, &mut server).expect("ok");
        server_to_client(&mut server, &mut client).expect("ok");
        (client, server)
    };

    // A flipped bit in message 4.
    let (mut client, mut server) = start();
    client_to_server(&mut client, &mut server).expect("ok");
    server.authorize(true).expect("ok");
    let mut accept = server.take_output().expect("message 4");
    accept[40] ^= 1;
    let error = client.receive(&accept).expect_err("tampered");
    assert!(
        matches!(error, HandshakeError::ServerAcceptInvalid),
        "{error:?}"
    );

    // A flipped bit in message 3 breaks the box.
    let (mut client, mut server) = start();
    let mut hello = client.take_output().expect("message 3");
    hello[100] ^= 1;
    let error = server.receive(&hello).expect_err("tampered");
    assert!(
        matches!(error, HandshakeError::ServerKeyMismatch),
        "{error:?}"
    );

    // A correctly boxed hello whose signature is wrong.
    let (mut client, mut server) = start();
    let _ = client.take_output();
    let ClientPhase::AwaitAccept(secrets) = &client.phase else {
        panic!("client awaits accept")
    };
    let secret2 = crypto::sha256(&[
        NetworkKey::PZP.as_bytes(),
        &secrets.secret[..],
        &secrets.a_bob[..],
    ]);
    let mut forged = *secrets.hello;
    forged[3] ^= 1;
    let error = server
        .receive(&crypto::secretbox_seal(&forged, &secret2))
        .expect_err("bad sig");
    assert!(
        matches!(error, HandshakeError::BadClientSignature),
        "{error:?}"
    );

    // A server that signs something else: the client refuses it.
    let (mut client, mut server) = start();
    client_to_server(&mut client, &mut server).expect("ok");
    let ServerPhase::AwaitAuthorization(_, verified) = &server.phase else {
        panic!("awaits authorization")
    };
    let wrong = bob().signing_key().sign(b"not the hello").to_bytes();
    let accept = crypto::secretbox_seal(&wrong, &verified.secret3);
    let error = client.receive(&accept).expect_err("bad sig");
    assert!(
        matches!(error, HandshakeError::BadServerSignature),
        "{error:?}"
    );
}

#[test]
fn low_order_ephemeral_keys_are_refused() {
    // A challenge with a valid hmac over the all-zero (low-order) point.
    let zero = [0u8; 32];
    let mut message = crypto::auth(&zero, NetworkKey::PZP.as_bytes()).to_vec();
    message.extend_from_slice(&zero);
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob(), &EphemeralSeed([6; 32]));
    let error = server.receive(&message).expect_err("low order");
    assert!(matches!(error, HandshakeError::LowOrderKey), "{error:?}");
}

#[test]
fn invalid_server_key_is_refused_up_front() {
    // y = 1 is the identity point: small order, so libsodium refuses to convert it.
    let mut bad = [0u8; 32];
    bad[0] = 1;
    let error = ClientHandshake::new(
        NetworkKey::PZP,
        alice(),
        PublicKey(bad),
        None,
        &EphemeralSeed([5; 32]),
    )
    .expect_err("bad key");
    assert!(
        matches!(error, HandshakeError::InvalidServerKey(_)),
        "{error:?}"
    );
}
