//! The transport stack and sync over it, compared with the JS reference by
//! `benches/compare.sh` (which runs `interop/jsbench/transport.js` and `bench-sync.js` in the
//! same sitting; figures in docs/benchmarks.md).
//!
//! - `shse/sans_io`: one SHSE handshake, client and server machines handing bytes to each
//!   other directly (the cryptography alone);
//! - `shse/duplex`: one handshake through the async drivers over an in-memory duplex (the
//!   JS `shse/handshake` does the same over an in-memory pull-stream pair);
//! - `secretstream/sans_io`: encrypt then decrypt 4 MiB in 64 KiB writes, no I/O (JS:
//!   `secretstream/memory`, pull-secretstream encrypt -> decrypt);
//! - `secretstream/duplex` and `secretstream/tcp`: 4 MiB through a pair of `BoxStream`s over an
//!   in-memory duplex and over one loopback TCP connection (JS: `secretstream/tcp`);
//! - `stack_sync/full`: two `peer::run` nodes over `TokioNet` with SHSE, secretstream and
//!   muxrpc; an empty node dials a node holding an account and a feed of N posts (N =
//!   `STACK_SYNC_MSGS`, default 10,000) and pulls all N + 2 msgs; timed from the dial to the
//!   last msg stored;
//! - `stack_sync/catch_up_100`: the same, the puller already holding the first N + 2 msgs and
//!   the author 100 more; timed from the dial to the 100th new msg stored.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use benches::fixtures;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use node::net::TokioNet;
use node::peer::{self, AnyStore, DialTarget, NodeConfig, NodeEvent, NodeHandle};
use node::transport::caps::NetworkKey;
use node::transport::secretstream::{BoxStream, Decryptor, Encryptor, HEADER_LEN};
use node::transport::shse::io::{self as shse_io, Config};
use node::transport::shse::{
    ClientHandshake, EphemeralSeed, Identity, ServerHandshake, SessionKeys,
};
use proto::db::Db;
use proto::goals::Goal;
use proto::ids::AccountId;
use proto::keys::Keypair;
use proto::msg::Msg;
use proto::store::MemStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes per secretstream transfer, written 64 KiB at a time (as the JS bench does).
const TRANSFER_BYTES: usize = 4 * 1024 * 1024;
const WRITE_BYTES: usize = 64 * 1024;
const NEW_MSGS: usize = 100;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn shse(c: &mut Criterion) {
    let client = Identity::from_seed(&[1; 32]);
    let server = Identity::from_seed(&[2; 32]);
    let mut group = c.benchmark_group("shse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sans_io", |bencher| {
        bencher.iter(|| {
            let mut alice = ClientHandshake::new(
                NetworkKey::default(),
                client.clone(),
                server.public_key(),
                None,
                &EphemeralSeed([5; 32]),
            )
            .expect("client");
            let mut bob = ServerHandshake::new(
                NetworkKey::default(),
                server.clone(),
                &EphemeralSeed([6; 32]),
            );
            loop {
                if let Some(bytes) = alice.take_output() {
                    bob.receive(&bytes).expect("server receives");
                }
                if bob.pending_authorization().is_some() {
                    bob.authorize(true).expect("authorize");
                }
                if let Some(bytes) = bob.take_output() {
                    alice.receive(&bytes).expect("client receives");
                }
                if alice.is_done() && bob.is_done() {
                    break;
                }
            }
            black_box((alice.take_outcome(), bob.take_outcome()))
        });
    });
    let runtime = current_thread();
    let (client_config, server_config) = (Config::new(client), Config::new(server.clone()));
    group.bench_function("duplex", |bencher| {
        bencher.iter(|| {
            runtime.block_on(async {
                let (mut a, mut b) = tokio::io::duplex(4096);
                let (seed_a, seed_b) = (EphemeralSeed([5; 32]), EphemeralSeed([6; 32]));
                let dial =
                    shse_io::client(&mut a, &client_config, server.public_key(), None, &seed_a);
                let answer = shse_io::server(&mut b, &server_config, &seed_b, |_| async { true });
                let (dialed, answered) = tokio::join!(dial, answer);
                black_box((dialed.expect("client"), answered.expect("server")))
            })
        });
    });
    group.finish();
}

/// Keys for both ends of a session (no handshake needed to measure the stream).
fn session_keys() -> (SessionKeys, SessionKeys) {
    let (one, two) = ([7u8; 32], [8u8; 32]);
    (
        SessionKeys {
            encrypt_key: one,
            decrypt_key: two,
        },
        SessionKeys {
            encrypt_key: two,
            decrypt_key: one,
        },
    )
}

/// Writes `TRANSFER_BYTES` into `writer` and reads them from `reader`, concurrently.
async fn transfer<W, R>(writer: &mut W, reader: &mut R, chunk: &[u8], sink: &mut [u8])
where
    W: tokio::io::AsyncWrite + Unpin,
    R: tokio::io::AsyncRead + Unpin,
{
    let write = async {
        for _ in 0..TRANSFER_BYTES / WRITE_BYTES {
            writer.write_all(chunk).await.expect("write");
        }
        writer.flush().await.expect("flush");
    };
    let read = async {
        let mut left = TRANSFER_BYTES;
        while left > 0 {
            let want = left.min(sink.len());
            let got = reader.read(&mut sink[..want]).await.expect("read");
            assert!(got > 0, "stream ended early");
            left -= got;
        }
    };
    tokio::join!(write, read);
}

fn secretstream(c: &mut Criterion) {
    let mut group = c.benchmark_group("secretstream");
    group.throughput(Throughput::Bytes(TRANSFER_BYTES as u64));
    let chunk = vec![0x61u8; WRITE_BYTES];
    let key = [7u8; 32];
    group.bench_function("sans_io", |bencher| {
        let mut ciphertext = Vec::with_capacity(TRANSFER_BYTES * 1100 / 1000);
        let mut plaintext = Vec::with_capacity(TRANSFER_BYTES);
        bencher.iter(|| {
            ciphertext.clear();
            plaintext.clear();
            let mut encryptor = Encryptor::new(&key, [9; HEADER_LEN]);
            for _ in 0..TRANSFER_BYTES / WRITE_BYTES {
                encryptor.encrypt(&chunk, &mut ciphertext).expect("encrypt");
            }
            let mut decryptor = Decryptor::new(&key);
            decryptor
                .decrypt(&ciphertext, &mut plaintext)
                .expect("decrypt");
            assert_eq!(plaintext.len(), TRANSFER_BYTES);
        });
    });

    let runtime = current_thread();
    let (client_keys, server_keys) = session_keys();
    let mut sink = vec![0u8; 64 * 1024];
    group.bench_function("duplex", |bencher| {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut writer = BoxStream::new(a, &client_keys, [1; HEADER_LEN]);
        let mut reader = BoxStream::new(b, &server_keys, [2; HEADER_LEN]);
        bencher.iter(|| runtime.block_on(transfer(&mut writer, &mut reader, &chunk, &mut sink)));
    });
    group.bench_function("tcp", |bencher| {
        let (a, b) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let address = listener.local_addr().expect("address");
            let (dialed, accepted) =
                tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
            let (dialed, (accepted, _)) = (dialed.expect("connect"), accepted.expect("accept"));
            dialed.set_nodelay(true).expect("nodelay");
            accepted.set_nodelay(true).expect("nodelay");
            (dialed, accepted)
        });
        let mut writer = BoxStream::new(a, &client_keys, [1; HEADER_LEN]);
        let mut reader = BoxStream::new(b, &server_keys, [2; HEADER_LEN]);
        bencher.iter(|| runtime.block_on(transfer(&mut writer, &mut reader, &chunk, &mut sink)));
    });
    group.finish();
}

/// The author's feed, and stores holding parts of it.
struct StackFixture {
    account: AccountId,
    /// Account root, moot and N posts.
    base: MemStore,
    /// The same and 100 more posts.
    all: MemStore,
    msgs: usize,
}

impl StackFixture {
    fn build(posts: usize) -> Self {
        let (msgs, account) = fixtures::linear_feed(posts + NEW_MSGS);
        let store = |msgs: &[Msg]| {
            let mut db = Db::new(MemStore::new());
            for msg in msgs {
                db.add(msg.clone(), None).expect("valid");
            }
            db.into_store()
        };
        let base_len = posts + 2;
        Self {
            account,
            base: store(msgs.get(..base_len).expect("long enough")),
            all: store(&msgs),
            msgs: base_len,
        }
    }
}

/// A node over loopback TCP with SHSE that counts the msgs it stores.
async fn stack_node(
    seed: u8,
    keypair: Keypair,
    store: MemStore,
    goals: Vec<(AccountId, Goal)>,
    stored: Arc<(AtomicUsize, usize, Notify)>,
) -> NodeHandle {
    let mut config = NodeConfig::new(keypair, u64::from(seed));
    config.listen = Some("127.0.0.1:0".to_owned());
    config.goals = goals;
    config.events = Some(Arc::new(move |event| {
        if let NodeEvent::Stored { .. } = event {
            let (count, target, notify) = &*stored;
            if count.fetch_add(1, Ordering::Relaxed) + 1 == *target {
                notify.notify_one();
            }
        }
    }));
    peer::run(config, Arc::new(TokioNet), AnyStore::new(store))
        .await
        .expect("node starts")
}

/// Starts the author on `author_store` and a puller on `puller_store`, then times the puller
/// from dialing the author to having stored `wanted` msgs.
async fn stack_sync_once(
    fixture: &StackFixture,
    author_store: MemStore,
    puller_store: MemStore,
    wanted: usize,
) -> Duration {
    let never = Arc::new((AtomicUsize::new(0), usize::MAX, Notify::new()));
    let author = stack_node(1, fixtures::author(), author_store, Vec::new(), never).await;
    let feed = proto::msg::feed_id(&fixture.account, "post");
    let stored = Arc::new((AtomicUsize::new(0), wanted, Notify::new()));
    let puller = stack_node(
        2,
        Keypair::from_seed(&[2; 32]),
        puller_store,
        vec![(fixture.account, Goal::All), (feed, Goal::All)],
        Arc::clone(&stored),
    )
    .await;
    let started = tokio::time::Instant::now();
    puller
        .connect(DialTarget {
            address: author.address().expect("listening").to_owned(),
            key: Some(author.key()),
        })
        .await
        .expect("dial");
    tokio::time::timeout(Duration::from_secs(600), stored.2.notified())
        .await
        .expect("the puller got every msg");
    let elapsed = started.elapsed();
    puller.shutdown().await.expect("shutdown");
    author.shutdown().await.expect("shutdown");
    elapsed
}

fn stack_sync(c: &mut Criterion) {
    let posts: usize = std::env::var("STACK_SYNC_MSGS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000);
    let fixture = StackFixture::build(posts);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("stack_sync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(fixture.msgs as u64));
    group.bench_function(format!("full/{posts}"), |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                total += runtime.block_on(stack_sync_once(
                    &fixture,
                    fixture.base.clone(),
                    MemStore::new(),
                    fixture.msgs,
                ));
            }
            total
        });
    });
    group.throughput(Throughput::Elements(NEW_MSGS as u64));
    group.bench_function(format!("catch_up_100/{posts}"), |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                total += runtime.block_on(stack_sync_once(
                    &fixture,
                    fixture.all.clone(),
                    fixture.base.clone(),
                    NEW_MSGS,
                ));
            }
            total
        });
    });
    group.finish();
}

criterion_group!(transport_benches, shse, secretstream, stack_sync);
criterion_main!(transport_benches);
