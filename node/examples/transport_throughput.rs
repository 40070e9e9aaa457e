//! Rough transport throughput on this machine (not a benchmark suite):
//!
//! ```text
//! cargo run --release -p node --example transport_throughput
//! ```
//!
//! Prints secretstream encrypt, decrypt and encrypt+decrypt rates for 16 KiB
//! writes, the same through two `BoxStream`s over an in-memory pipe, and SHSE
//! handshakes per second (both sides computed on one thread).

use node::transport::caps::NetworkKey;
use node::transport::secretstream::{BoxStream, Decryptor, Encryptor};
use node::transport::shse::{
    ClientHandshake, EphemeralSeed, Identity, ServerHandshake, SessionKeys,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const TOTAL_BYTES: usize = 64 * 1024 * 1024;
const WRITE_LEN: usize = 16 * 1024;
const HANDSHAKES: u32 = 1000;

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / seconds
}

fn secretstream() {
    let key = [7u8; 32];
    let write = vec![0xabu8; WRITE_LEN];
    let mut encryptor = Encryptor::new(&key, [1u8; 24]);
    let mut wire = Vec::with_capacity(TOTAL_BYTES * 512 / 494 + 4096);
    let started = Instant::now();
    for _ in 0..TOTAL_BYTES / WRITE_LEN {
        encryptor.encrypt(&write, &mut wire).expect("encrypt");
    }
    encryptor.finish(&mut wire).expect("finish");
    let encrypt_s = started.elapsed().as_secs_f64();

    let mut decryptor = Decryptor::new(&key);
    let mut plain = Vec::with_capacity(64 * 1024);
    let started = Instant::now();
    for piece in wire.chunks(16 * 1024) {
        plain.clear();
        decryptor.decrypt(piece, &mut plain).expect("decrypt");
    }
    decryptor.end_of_input().expect("final");
    let decrypt_s = started.elapsed().as_secs_f64();
    println!(
        "secretstream: encrypt {:.0} MB/s, decrypt {:.0} MB/s, encrypt+decrypt {:.0} MB/s (plaintext)",
        mb_per_s(TOTAL_BYTES, encrypt_s),
        mb_per_s(TOTAL_BYTES, decrypt_s),
        mb_per_s(TOTAL_BYTES, encrypt_s + decrypt_s),
    );
}

async fn box_stream() {
    let (left, right) = tokio::io::duplex(256 * 1024);
    let left_keys = SessionKeys {
        encrypt_key: [1; 32],
        decrypt_key: [2; 32],
    };
    let right_keys = SessionKeys {
        encrypt_key: [2; 32],
        decrypt_key: [1; 32],
    };
    let mut left = BoxStream::new(left, &left_keys, [3; 24]);
    let mut right = BoxStream::new(right, &right_keys, [4; 24]);
    let started = Instant::now();
    let writer = async {
        let write = vec![0x5au8; WRITE_LEN];
        for _ in 0..TOTAL_BYTES / WRITE_LEN {
            left.write_all(&write).await.expect("write");
        }
        left.shutdown().await.expect("shutdown");
    };
    let reader = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            let read = right.read(&mut buf).await.expect("read");
            if read == 0 {
                break total;
            }
            total += read;
        }
    };
    let ((), total) = tokio::join!(writer, reader);
    assert_eq!(total, TOTAL_BYTES);
    println!(
        "BoxStream over tokio::io::duplex, one task: {:.0} MB/s",
        mb_per_s(TOTAL_BYTES, started.elapsed().as_secs_f64())
    );
}

fn handshakes() {
    let alice = Identity::from_seed(&[1u8; 32]);
    let bob = Identity::from_seed(&[2u8; 32]);
    let started = Instant::now();
    for i in 0..HANDSHAKES {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        let mut client = ClientHandshake::new(
            NetworkKey::PZP,
            alice.clone(),
            bob.public_key(),
            None,
            &EphemeralSeed(seed),
        )
        .expect("valid key");
        seed[31] = 1;
        let mut server = ServerHandshake::new(NetworkKey::PZP, bob.clone(), &EphemeralSeed(seed));
        let m1 = client.take_output().expect("m1");
        server.receive(&m1).expect("m1");
        let m2 = server.take_output().expect("m2");
        client.receive(&m2).expect("m2");
        let m3 = client.take_output().expect("m3");
        server.receive(&m3).expect("m3");
        server.authorize(true).expect("authorize");
        let m4 = server.take_output().expect("m4");
        client.receive(&m4).expect("m4");
        assert!(client.is_done() && server.is_done());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "shse: {:.0} handshakes/s (client and server both computed on one thread, {:.0} µs each)",
        f64::from(HANDSHAKES) / seconds,
        seconds * 1e6 / f64::from(HANDSHAKES)
    );
}

fn main() {
    secretstream();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(box_stream());
    handshakes();
}
