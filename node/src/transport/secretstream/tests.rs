//! pull-secretstream framing against the `shse.json` block and hostile input.

use super::sodium::{ABYTES, State, TAG_MESSAGE};
use super::*;
use serde_json::Value;

const SHSE_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/shse.json"));

fn hex_at(v: &Value, pointer: &str) -> Vec<u8> {
    hex::decode(v.pointer(pointer).and_then(Value::as_str).expect(pointer)).expect("hex")
}

const KEY: [u8; 32] = [0x5a; 32];
const HEADER: [u8; HEADER_LEN] = [0x17; HEADER_LEN];

fn sealed(writes: &[&[u8]], finish: bool) -> Vec<u8> {
    let mut encryptor = Encryptor::new(&KEY, HEADER);
    let mut out = Vec::new();
    for write in writes {
        encryptor.encrypt(write, &mut out).expect("encrypt");
    }
    if finish {
        encryptor.finish(&mut out).expect("finish");
    }
    out
}

fn opened(ciphertext: &[u8]) -> Result<Vec<u8>, SecretStreamError> {
    let mut decryptor = Decryptor::new(&KEY);
    let mut out = Vec::new();
    decryptor.decrypt(ciphertext, &mut out)?;
    decryptor.end_of_input()?;
    Ok(out)
}

#[test]
fn vector_block_decrypts_to_hello_from_client() {
    let v: Value = serde_json::from_str(SHSE_JSON).expect("json");
    let header = hex_at(&v, "/clientToServerChunksHex/2");
    let block = hex_at(&v, "/clientToServerChunksHex/3");
    assert_eq!(header.len(), HEADER_LEN);
    assert_eq!(block.len(), CIPHERTEXT_BLOCK_LEN);
    let server_decrypt: [u8; 32] = hex_at(&v, "/serverKeys/decryptKeyHex")
        .try_into()
        .expect("32 bytes");
    let mut decryptor = Decryptor::new(&server_decrypt);
    let mut plain = Vec::new();
    decryptor.decrypt(&header, &mut plain).expect("header");
    decryptor
        .decrypt(&block, &mut plain)
        .expect("block authenticates");
    assert_eq!(plain, b"hello from client");
    assert!(!decryptor.is_finished());
    assert_eq!(decryptor.end_of_input(), Err(SecretStreamError::Truncated));
}

#[test]
fn encrypting_with_the_vector_header_reproduces_the_block() {
    let v: Value = serde_json::from_str(SHSE_JSON).expect("json");
    let header: [u8; HEADER_LEN] = hex_at(&v, "/clientToServerChunksHex/2")
        .try_into()
        .expect("24 bytes");
    let client_encrypt: [u8; 32] = hex_at(&v, "/clientKeys/encryptKeyHex")
        .try_into()
        .expect("32 bytes");
    let mut encryptor = Encryptor::new(&client_encrypt, header);
    let mut out = Vec::new();
    encryptor
        .encrypt(b"hello from client", &mut out)
        .expect("encrypt");
    let mut expected = header.to_vec();
    expected.extend_from_slice(&hex_at(&v, "/clientToServerChunksHex/3"));
    assert_eq!(hex::encode(&out), hex::encode(&expected));
}

#[test]
fn blocks_follow_writes_and_round_trip() {
    for len in [0usize, 1, 17, 493, 494, 495, 988, 989, 1000, 10_000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let wire = sealed(&[&data], true);
        let blocks = len.div_ceil(BLOCK_PAYLOAD_MAX) + 1;
        assert_eq!(
            wire.len(),
            HEADER_LEN + blocks * CIPHERTEXT_BLOCK_LEN,
            "len {len}"
        );
        assert_eq!(opened(&wire).expect("round trip"), data, "len {len}");
    }
    // Three small writes are three blocks, not one.
    let wire = sealed(&[b"a", b"bc", b"def"], true);
    assert_eq!(wire.len(), HEADER_LEN + 4 * CIPHERTEXT_BLOCK_LEN);
    assert_eq!(opened(&wire).expect("round trip"), b"abcdef");
}

#[test]
fn any_input_split_decrypts_the_same() {
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let wire = sealed(&[&data[..1200], &data[1200..]], true);
    for step in [1usize, 7, 24, 25, 511, 512, 513, 4096] {
        let mut decryptor = Decryptor::new(&KEY);
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            decryptor.decrypt(piece, &mut out).expect("decrypt");
        }
        assert!(decryptor.is_finished());
        assert_eq!(out, data, "step {step}");
    }
}

#[test]
fn final_block_is_an_empty_padded_block() {
    let wire = sealed(&[], true);
    assert_eq!(wire.len(), HEADER_LEN + CIPHERTEXT_BLOCK_LEN);
    let mut state = State::new(&KEY, &HEADER);
    let mut plain = [0u8; PLAINTEXT_BLOCK_LEN];
    assert_eq!(
        state.pull(&wire[HEADER_LEN..], &mut plain),
        Ok(sodium::TAG_FINAL)
    );
    assert_eq!(plain[0], 0x80);
    assert!(plain[1..].iter().all(|&b| b == 0));
    assert_eq!(opened(&wire), Ok(Vec::new()));
}

#[test]
fn tampered_block_is_rejected() {
    let mut wire = sealed(&[b"some secret words"], true);
    wire[HEADER_LEN + 100] ^= 0x01;
    assert_eq!(opened(&wire), Err(SecretStreamError::Authentication));
    // Tampering with the header breaks every block.
    let mut wire = sealed(&[b"x"], true);
    wire[3] ^= 0x80;
    assert_eq!(opened(&wire), Err(SecretStreamError::Authentication));
}

#[test]
fn replayed_and_reordered_blocks_are_rejected() {
    let wire = sealed(&[b"first", b"second"], true);
    let block = |i: usize| &wire[HEADER_LEN + i * CIPHERTEXT_BLOCK_LEN..][..CIPHERTEXT_BLOCK_LEN];
    let mut replayed = wire[..HEADER_LEN].to_vec();
    replayed.extend_from_slice(block(0));
    replayed.extend_from_slice(block(0));
    assert_eq!(opened(&replayed), Err(SecretStreamError::Authentication));

    let mut reordered = wire[..HEADER_LEN].to_vec();
    reordered.extend_from_slice(block(1));
    reordered.extend_from_slice(block(0));
    assert_eq!(opened(&reordered), Err(SecretStreamError::Authentication));

    // After a failure the decryptor stays failed, even for good input.
    let mut decryptor = Decryptor::new(&KEY);
    let mut out = Vec::new();
    assert!(decryptor.decrypt(&reordered, &mut out).is_err());
    assert_eq!(
        decryptor.decrypt(block(2), &mut out),
        Err(SecretStreamError::Failed)
    );
}

#[test]
fn truncated_stream_is_rejected() {
    let wire = sealed(&[b"no final tag follows"], false);
    assert_eq!(opened(&wire), Err(SecretStreamError::Truncated));
    // Cut inside a block, or before the header ends.
    let wire = sealed(&[b"data"], true);
    assert_eq!(
        opened(&wire[..wire.len() - 1]),
        Err(SecretStreamError::Truncated)
    );
    assert_eq!(opened(&wire[..10]), Err(SecretStreamError::Truncated));
    assert_eq!(opened(&[]), Err(SecretStreamError::Truncated));
}

#[test]
fn data_after_final_is_rejected() {
    let mut wire = sealed(&[b"data"], true);
    wire.push(0);
    assert_eq!(opened(&wire), Err(SecretStreamError::DataAfterFinal));
}

#[test]
fn unpadded_block_is_rejected() {
    // Authentic (right key and nonce) but not sodium_pad-ded: all zeros.
    let mut state = State::new(&KEY, &HEADER);
    let mut block = vec![0u8; CIPHERTEXT_BLOCK_LEN];
    state.push(&[0u8; PLAINTEXT_BLOCK_LEN], TAG_MESSAGE, &mut block);
    let mut wire = HEADER.to_vec();
    wire.extend_from_slice(&block);
    assert_eq!(opened(&wire), Err(SecretStreamError::BadPadding));
    assert_eq!(ABYTES + PLAINTEXT_BLOCK_LEN, CIPHERTEXT_BLOCK_LEN);
}

#[test]
fn encryptor_refuses_misuse() {
    let mut encryptor = Encryptor::new(&KEY, HEADER);
    assert_eq!(
        encryptor.encrypt_block(&[0u8; BLOCK_PAYLOAD_MAX + 1]),
        Err(SecretStreamError::PayloadTooLong(BLOCK_PAYLOAD_MAX + 1))
    );
    let mut out = Vec::new();
    encryptor.finish(&mut out).expect("finish");
    assert_eq!(
        encryptor.encrypt(b"late", &mut out),
        Err(SecretStreamError::WriteAfterFinish)
    );
    assert_eq!(
        encryptor.finish(&mut out),
        Err(SecretStreamError::WriteAfterFinish)
    );
}

#[test]
fn unpad_matches_sodium_unpad() {
    assert_eq!(unpad(&[0x80, 0, 0]), Some(0));
    assert_eq!(unpad(&[1, 2, 0x80]), Some(2));
    assert_eq!(unpad(&[0x80, 0x80, 0]), Some(1));
    assert_eq!(unpad(&[0, 0, 0]), None);
    assert_eq!(unpad(&[1, 2, 3]), None);
}

mod duplex {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn keys() -> (
        crate::transport::shse::SessionKeys,
        crate::transport::shse::SessionKeys,
    ) {
        let a = crate::transport::shse::SessionKeys {
            encrypt_key: [1; 32],
            decrypt_key: [2; 32],
        };
        let b = crate::transport::shse::SessionKeys {
            encrypt_key: [2; 32],
            decrypt_key: [1; 32],
        };
        (a, b)
    }

    #[tokio::test]
    async fn duplex_round_trip_with_backpressure() {
        let (left, right) = tokio::io::duplex(1000);
        let (left_keys, right_keys) = keys();
        let mut left = BoxStream::new(left, &left_keys, [3; HEADER_LEN]);
        let mut right = BoxStream::new(right, &right_keys, [4; HEADER_LEN]);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            left.write_all(&data).await.expect("write");
            left.shutdown().await.expect("shutdown");
            left
        });
        let mut received = Vec::new();
        right.read_to_end(&mut received).await.expect("read");
        assert_eq!(received, expected);
        let mut left = writer.await.expect("join");
        // The other direction still works after one side finished. Read while
        // writing: the final block does not fit the 1000-byte pipe otherwise.
        let mut back = Vec::new();
        let (written, read) = tokio::join!(
            async {
                right.write_all(b"pong").await?;
                right.shutdown().await
            },
            left.read_to_end(&mut back),
        );
        written.expect("write back");
        read.expect("read back");
        assert_eq!(back, b"pong");
    }

    #[tokio::test]
    async fn eof_without_final_tag_is_an_error() {
        let (left, right) = tokio::io::duplex(4096);
        let (left_keys, right_keys) = keys();
        let mut left = BoxStream::new(left, &left_keys, [3; HEADER_LEN]);
        let mut right = BoxStream::new(right, &right_keys, [4; HEADER_LEN]);
        left.write_all(b"half a conversation").await.expect("write");
        left.flush().await.expect("flush");
        drop(left);
        let mut received = Vec::new();
        let error = right
            .read_to_end(&mut received)
            .await
            .expect_err("truncated");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        let inner = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<SecretStreamError>());
        assert_eq!(inner, Some(&SecretStreamError::Truncated));
        assert_eq!(received, b"half a conversation");
    }
}
