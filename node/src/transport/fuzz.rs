//! Bodies of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), kept here so
//! that a plain `cargo test` runs them too (over seeded random inputs) and so
//! that they can build *valid* protocol prefixes with crate internals: random
//! bytes alone never get past SHSE's first HMAC or secretstream's first MAC.
//!
//! Each body must never panic on any input; the asserts inside are properties
//! of the machines (a panic there is a real bug the fuzzer should report).

use super::caps::NetworkKey;
use super::muxrpc::codec::{self, Decoder, Frame};
use super::muxrpc::{Permissions, Rpc};
use super::secretstream::{
    CIPHERTEXT_BLOCK_LEN, Decryptor, Encryptor, HEADER_LEN, SecretStreamError,
};
use super::shse::{
    CHALLENGE_LEN, ClientHandshake, EphemeralSeed, Identity, MESSAGE_LEN_MAX, ServerHandshake,
};
use super::{crypto, shse};

/// Feeds `input` to `receive` in chunks of `chunk` bytes, checking the
/// machine's contract: it never uses more than offered or than it wants.
fn feed_server(server: &mut ServerHandshake, input: &[u8], chunk: usize) {
    for piece in input.chunks(chunk.max(1)) {
        let wanted = server.wanted();
        assert!(wanted <= MESSAGE_LEN_MAX);
        match server.receive(piece) {
            Ok(used) => assert!(used <= piece.len() && used <= wanted),
            Err(_) => return,
        }
        if let Some(remote) = server.pending_authorization() {
            // Accept even-length inputs, refuse odd ones: both paths get fuzzed.
            let accept = input.len().is_multiple_of(2);
            let result = server.authorize(accept);
            assert_eq!(result.is_ok(), accept);
            if accept {
                assert_eq!(
                    server.take_output().map(|m| m.len()),
                    Some(shse::SERVER_ACCEPT_LEN)
                );
                let outcome = server.take_outcome().expect("authorized handshake is done");
                assert_eq!(outcome.remote, remote);
            }
            return;
        }
    }
}

/// `fuzz_targets/shse_server.rs`: the server handshake machine under arbitrary
/// client bytes. The first byte picks how much of a genuine client to play
/// before the fuzz bytes take over (so the fuzzer reaches the hello checks).
pub fn shse_server(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bob = Identity::from_seed(&[2u8; 32]);
    let mut server = ServerHandshake::new(NetworkKey::PZP, bob.clone(), &EphemeralSeed([6u8; 32]));
    let chunk = usize::from(mode >> 2) + 1;
    let alice = Identity::from_seed(&[1u8; 32]);
    let mut client = ClientHandshake::new(
        NetworkKey::PZP,
        alice,
        bob.public_key(),
        None,
        &EphemeralSeed([5u8; 32]),
    )
    .expect("invariant: bob's key is valid");
    match mode % 3 {
        // Raw bytes from the first message on.
        0 => feed_server(&mut server, rest, chunk),
        // A genuine challenge, then raw bytes as the hello.
        1 => {
            let challenge = client.take_output().expect("message 1");
            assert_eq!(server.receive(&challenge).ok(), Some(CHALLENGE_LEN));
            feed_server(&mut server, rest, chunk);
        }
        // A genuine challenge, then fuzz bytes as the hello *plaintext*, boxed
        // with the right key: this reaches the signature and key checks.
        _ => {
            let challenge = client.take_output().expect("message 1");
            assert_eq!(server.receive(&challenge).ok(), Some(CHALLENGE_LEN));
            let reply = server.take_output().expect("message 2");
            assert!(client.receive(&reply).is_ok());
            let secret2 = client.secret2_for_fuzzing().expect("client awaits accept");
            let mut hello = [0u8; 128];
            let take = rest.len().min(hello.len());
            hello[..take].copy_from_slice(&rest[..take]);
            let boxed = crypto::secretbox_seal(&hello, &secret2);
            feed_server(&mut server, &boxed, chunk);
        }
    }
}

/// `fuzz_targets/secretstream_decrypt.rs`: the receiving half under arbitrary
/// bytes, and under genuine streams with one bit flipped (which must always
/// be rejected).
pub fn secretstream_decrypt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = [0x24u8; 32];
    let chunk = usize::from(mode >> 1) * 7 + 1;
    if mode % 2 == 0 {
        let mut decryptor = Decryptor::new(&key);
        let mut out = Vec::new();
        for piece in rest.chunks(chunk) {
            let before = out.len();
            if decryptor.decrypt(piece, &mut out).is_err() {
                return;
            }
            assert!(out.len() - before < piece.len().max(1) + CIPHERTEXT_BLOCK_LEN);
        }
        let _ = decryptor.end_of_input();
        return;
    }
    // A genuine stream of the fuzz bytes (split into writes at 0xff bytes),
    // then one bit flipped at a position taken from the input.
    let Some((flip, payload)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let mut encryptor = Encryptor::new(&key, [0x42u8; HEADER_LEN]);
    let mut wire = Vec::new();
    for write in payload.split(|&b| b == 0xff) {
        encryptor
            .encrypt(write, &mut wire)
            .expect("fresh encryptor");
    }
    encryptor.finish(&mut wire).expect("fresh encryptor");
    let expected: Vec<u8> = payload.iter().copied().filter(|&b| b != 0xff).collect();
    let decrypt_all = |wire: &[u8]| -> Result<Vec<u8>, SecretStreamError> {
        let mut decryptor = Decryptor::new(&key);
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            decryptor.decrypt(piece, &mut out)?;
        }
        decryptor.end_of_input()?;
        Ok(out)
    };
    assert_eq!(decrypt_all(&wire).as_ref(), Ok(&expected));
    let bit = usize::from(u16::from_le_bytes(*flip)) % (wire.len() * 8);
    wire[bit / 8] ^= 1 << (bit % 8);
    assert!(decrypt_all(&wire).is_err(), "a flipped bit went unnoticed");
}

/// `fuzz_targets/muxrpc_decode.rs`: the frame decoder and the call machine
/// under arbitrary bytes. Every decoded frame must re-encode to bytes that
/// decode to the same frame.
pub fn muxrpc_decode(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode) * 3 + 1;
    let mut decoder = Decoder::new();
    let mut rpc = Rpc::new(if mode % 2 == 0 {
        Permissions::anonymous()
    } else {
        Permissions::AllowAll
    });
    for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => return,
            };
            let mut bytes = Vec::new();
            if let Frame::Packet(packet) = &frame {
                codec::encode(&frame, &mut bytes).expect("decoded packets re-encode");
                assert_eq!(bytes.len(), codec::HEADER_LEN + packet.body.len());
                let mut again = Decoder::new();
                again.push(&bytes);
                assert_eq!(again.next_frame().ok().flatten().as_ref(), Some(&frame));
            }
            if rpc.handle_frame(frame).is_err() {
                return;
            }
            rpc.check_invariants();
            let mut out = Vec::new();
            rpc.encode_transmit(&mut out);
            while rpc.poll_event().is_some() {}
            assert!(rpc.open_calls() <= super::muxrpc::INBOUND_CALLS_MAX);
        }
        assert!(decoder.buffered_len() <= codec::HEADER_LEN + codec::FRAME_BODY_LEN_MAX + chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    /// Deterministic random inputs, several hundred per target, with every
    /// mode byte covered.
    fn inputs(seed: u64) -> impl Iterator<Item = Vec<u8>> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..400u32).map(move |i| {
            let len = (rng.next_u32() % 1500) as usize;
            let mut bytes = vec![0u8; len + 1];
            rng.fill_bytes(&mut bytes);
            bytes[0] = (i % 256) as u8;
            bytes
        })
    }

    #[test]
    fn shse_server_survives_random_input() {
        inputs(1).for_each(|input| shse_server(&input));
        // Edge shapes: empty, one byte, exactly a challenge.
        shse_server(&[]);
        shse_server(&[1]);
        shse_server(&[0; 65]);
    }

    #[test]
    fn secretstream_decrypt_survives_random_input() {
        inputs(2).for_each(|input| secretstream_decrypt(&input));
        secretstream_decrypt(&[1, 0, 0]);
        secretstream_decrypt(&[1, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn muxrpc_decode_survives_random_input() {
        inputs(3).for_each(|input| muxrpc_decode(&input));
        // Random bytes rarely form frames: also feed valid frames with random bodies.
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        for i in 0..300u32 {
            let mut data = vec![(i % 256) as u8];
            for _ in 0..(rng.next_u32() % 8) {
                let body_len = rng.next_u32() % 64 + 1;
                let flags = (rng.next_u32() % 16) as u8;
                let req = (rng.next_u32() % 7) as i32 - 3;
                data.extend_from_slice(
                    &codec::Header {
                        flags,
                        body_len,
                        req,
                    }
                    .to_bytes(),
                );
                let body: &[u8] = match rng.next_u32() % 3 {
                    0 => br#"{"name":["sync","connect"],"args":[],"type":"duplex"}"#,
                    1 => b"true",
                    _ => br#"{"name":["db","get"],"args":[]}"#,
                };
                let mut padded = body.to_vec();
                padded.resize(body_len as usize, b' ');
                data.extend_from_slice(&padded);
            }
            muxrpc_decode(&data);
        }
    }
}
