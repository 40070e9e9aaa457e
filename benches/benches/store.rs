//! The durable store's speed: durable append (group commit), lookup by ID, tangle read,
//! end-to-end `db add` of a feed against a validation-only baseline (10k and 100k msgs, for
//! scaling), and reopen of 100k and 1M msgs.
//!
//! Run: `cargo bench -p benches --bench store`. Fixtures (feeds and stores made with the same
//! msgs `Db::publish` makes) are cached under `target/store-bench/`; the 1M store takes a
//! minute or two to make the first time. `STORE_BENCH_SKIP_1M=1` skips it.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use node::store::{DiskStore, Options};
use node::verify_ahead;
use proto::db::Db;
use proto::ids::MsgId;
use proto::ingest::{Verdict, add_json};
use proto::keys::Keypair;
use proto::msg::{Account, Draft, Msg};
use proto::store::{MemStore, Store};
use proto::validate::{Digest, Verifier};
use serde_json::json;

/// Msgs the CLI commits per group at most (`ppppp db add`); the e2e bench commits as often.
const GROUP_COMMIT_MSGS: usize = 4096;
/// Msgs flushed at a time while making a fixture store.
const FIXTURE_FLUSH_MSGS: usize = 10_000;
/// Feed sizes of the ingest benches.
const INGEST_SIZES: [usize; 2] = [10_000, 100_000];
/// Store sizes of the reopen bench.
const REOPEN_SIZES: [usize; 2] = [100_000, 1_000_000];
/// Msgs in the store the lookup and tangle benches read.
const READ_STORE_MSGS: usize = 10_000;
/// Text that makes a feed msg about the size of the JS bench's (~570 bytes of JSON).
const FILLER: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
    tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud";

fn fixture_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("store-bench")
}

/// Makes the account root, the moot and `count` msgs of one feed, exactly as
/// `Db::publish` would (same drafts), without validating each against a database.
fn make_feed(count: usize, mut visit: impl FnMut(MsgId, Msg)) {
    let keypair = Keypair::from_string_seed("bench");
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "bench")
        .expect("account");
    let feed = db.init_feed(&keypair, &account, "post").expect("feed");
    let mut records = Vec::new();
    db.store()
        .scan(&mut |record| {
            records.push(record.clone());
            std::ops::ControlFlow::Continue(())
        })
        .expect("scan");
    for record in records {
        visit(record.id, Msg::clone(&record.msg));
    }
    let mut tangle = db.tangle(&feed).expect("feed tangle").clone();
    for index in 0..count {
        let msg = Msg::create(
            Draft {
                data: json!({"text": format!("msg {index}: {FILLER}")}),
                domain: "post".to_owned(),
                account: Account::Id(account),
                account_tips: Some(vec![account]),
                tangles: vec![&tangle],
            },
            &keypair,
        )
        .expect("create");
        let id = msg.id();
        tangle.insert(id, &msg);
        visit(id, msg);
    }
}

/// The feed of `count` msgs (plus account root and moot) as JSON lines, cached on disk.
fn feed_lines(count: usize) -> Vec<String> {
    let path = fixture_root().join(format!("feed-{count}.jsonl"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() == count + 2 {
            return lines;
        }
    }
    let mut lines = Vec::with_capacity(count + 2);
    make_feed(count, |_, msg| lines.push(msg.to_json()));
    std::fs::create_dir_all(fixture_root()).expect("fixture dir");
    let partial = path.with_extension("partial");
    std::fs::write(&partial, lines.join("\n") + "\n").expect("write feed");
    std::fs::rename(&partial, &path).expect("rename feed");
    lines
}

/// A store holding a feed of `count` msgs, cached on disk (a `complete` marker guards
/// against a half-made fixture).
fn store_fixture(count: usize) -> PathBuf {
    let dir = fixture_root().join(format!("store-{count}"));
    let marker = dir.join("complete");
    if marker.exists() {
        return dir.join("db");
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "making a store of {count} msgs under {} (once)",
        dir.display()
    );
    let mut store = DiskStore::create(dir.join("db")).expect("create fixture");
    let mut appended = 0;
    make_feed(count, |id, msg| {
        store.append(id, Arc::new(msg)).expect("append");
        appended += 1;
        if appended % FIXTURE_FLUSH_MSGS == 0 {
            store.flush().expect("flush");
        }
    });
    store.flush().expect("flush");
    drop(store);
    std::fs::File::create(&marker)
        .and_then(|mut file| file.write_all(b"ok\n"))
        .expect("marker");
    dir.join("db")
}

fn decoded(lines: &[String]) -> Vec<(MsgId, Arc<Msg>)> {
    lines
        .iter()
        .map(|line| {
            let msg = proto::msg::decode_str(line).expect("msg");
            (msg.id(), Arc::new(msg))
        })
        .collect()
}

fn bench_append(c: &mut Criterion) {
    let msgs = decoded(&feed_lines(READ_STORE_MSGS));
    let mut group = c.benchmark_group("store/append_durable");
    group.sample_size(10);
    for batch in [1usize, 100, 1000, READ_STORE_MSGS] {
        // fsync per msg is slow; measure it on fewer msgs.
        let count = if batch == 1 { 200 } else { msgs.len() };
        group.throughput(Throughput::Elements(u64::try_from(count).expect("count")));
        group.bench_function(format!("batch_{batch}"), |bencher| {
            bencher.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store = DiskStore::create(dir.path()).expect("create");
                    (dir, store)
                },
                |(dir, mut store)| {
                    for (index, (id, msg)) in msgs.iter().take(count).enumerate() {
                        store.append(*id, Arc::clone(msg)).expect("append");
                        if (index + 1) % batch == 0 {
                            store.flush().expect("flush");
                        }
                    }
                    store.flush().expect("flush");
                    (dir, store)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn bench_reads(c: &mut Criterion) {
    let dir = store_fixture(READ_STORE_MSGS);
    let store = DiskStore::open_read_only(&dir, &Options::default()).expect("open");
    let mut ids = Vec::new();
    store
        .scan(&mut |record| {
            ids.push(record.id);
            std::ops::ControlFlow::Continue(())
        })
        .expect("scan");
    let feed = ids[1];
    let mut group = c.benchmark_group("store/read");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("get_by_id", |bencher| {
        bencher.iter(|| {
            // A stride through the IDs, so lookups do not hit one cache line.
            next = (next + 7919) % ids.len();
            black_box(store.get(&ids[next]).expect("get").expect("stored"))
        });
    });
    group.bench_function("get_missing", |bencher| {
        let missing = MsgId::from_bytes(&[7u8; 32]);
        bencher.iter(|| black_box(store.get(&missing).expect("get")));
    });
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        u64::try_from(ids.len() - 1).expect("len"),
    ));
    group.bench_function("tangle_load_10k", |bencher| {
        bencher.iter_batched(
            || Db::new(DiskStore::open_read_only(&dir, &Options::default()).expect("open")),
            |mut db| black_box(db.tangle(&feed).expect("tangle").len()),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("hist_10k", |bencher| {
        bencher.iter_batched(
            || Db::new(DiskStore::open_read_only(&dir, &Options::default()).expect("open")),
            |mut db| {
                let order: Vec<MsgId> = db
                    .tangle(&feed)
                    .expect("tangle")
                    .topo_order()
                    .copied()
                    .collect();
                let mut bytes = 0;
                for id in order {
                    bytes += db.get(&id).expect("get").expect("stored").to_json().len();
                }
                black_box(bytes)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// An empty database on a fresh disk store (the directory lives as long as the store).
fn empty_disk_db() -> (tempfile::TempDir, Db<DiskStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::new(DiskStore::create(dir.path()).expect("create"));
    (dir, db)
}

fn bench_ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    for count in INGEST_SIZES {
        let lines = feed_lines(count);
        group.throughput(Throughput::Elements(
            u64::try_from(lines.len()).expect("len"),
        ));
        group.bench_function(format!("validate_only_mem/{count}"), |bencher| {
            bencher.iter_batched(
                || Db::new(MemStore::new()),
                |mut db| {
                    for line in &lines {
                        let verdict =
                            add_json(&mut db, line).unwrap_or_else(|never| match never {});
                        debug_assert!(matches!(verdict, Verdict::Ok(_)));
                    }
                    db
                },
                BatchSize::PerIteration,
            );
        });
        bench_verify_ahead(&mut group, count, &lines);
        group.bench_function(format!("db_add_disk/{count}"), |bencher| {
            bencher.iter_batched(
                empty_disk_db,
                |(dir, mut db)| {
                    for (index, line) in lines.iter().enumerate() {
                        let verdict = add_json(&mut db, line).expect("store");
                        debug_assert!(matches!(verdict, Verdict::Ok(_)));
                        if (index + 1) % GROUP_COMMIT_MSGS == 0 {
                            db.flush().expect("flush");
                        }
                    }
                    db.flush().expect("flush");
                    (dir, db)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// The reference rate (one bare signature verification per msg, on one core) and ingest with
/// signatures verified ahead on every core (`node::verify_ahead`), in memory and on disk with
/// the CLI's group commit. Their ratio is issue 16's figure.
fn bench_verify_ahead(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    count: usize,
    lines: &[String],
) {
    let msgs = decoded(lines);
    let digests: Vec<Digest> = msgs.iter().map(|(_, msg)| Digest::of(msg)).collect();
    group.bench_function(format!("verify_only/{count}"), |bencher| {
        bencher.iter(|| {
            let mut verifier = Verifier::new();
            let valid = msgs
                .iter()
                .zip(&digests)
                .filter(|((_, msg), digest)| verifier.verify(msg, &digest.canonical_metadata))
                .count();
            black_box(valid)
        });
    });
    let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
    group.bench_function(format!("verify_ahead_mem/{count}"), |bencher| {
        bencher.iter_batched(
            || Db::new(MemStore::new()),
            |mut db| {
                for chunk in texts.chunks(GROUP_COMMIT_MSGS) {
                    let (decoded, ahead) = verify_ahead::decode_all(chunk);
                    let verdicts = verify_ahead::add_decoded_all(&mut db, decoded, ahead)
                        .unwrap_or_else(|never| match never {});
                    debug_assert!(verdicts.iter().all(|v| matches!(v, Verdict::Ok(_))));
                }
                db
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(format!("db_add_ahead_disk/{count}"), |bencher| {
        bencher.iter_batched(
            empty_disk_db,
            |(dir, mut db)| {
                for chunk in texts.chunks(GROUP_COMMIT_MSGS) {
                    let (decoded, ahead) = verify_ahead::decode_all(chunk);
                    let verdicts =
                        verify_ahead::add_decoded_all(&mut db, decoded, ahead).expect("store");
                    debug_assert!(verdicts.iter().all(|v| matches!(v, Verdict::Ok(_))));
                    db.flush().expect("flush");
                }
                (dir, db)
            },
            BatchSize::PerIteration,
        );
    });
}

fn bench_reopen(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/reopen");
    group.sample_size(10);
    for count in REOPEN_SIZES {
        if count >= 1_000_000 && std::env::var_os("STORE_BENCH_SKIP_1M").is_some() {
            continue;
        }
        let dir = store_fixture(count);
        group.throughput(Throughput::Elements(
            u64::try_from(count + 2).expect("count"),
        ));
        group.bench_function(format!("{count}"), |bencher| {
            bencher.iter(|| {
                let store = DiskStore::open_read_only(&dir, &Options::default()).expect("open");
                assert_eq!(store.len(), u64::try_from(count + 2).expect("count"));
                store
            });
        });
        group.bench_function(format!("writer_{count}"), |bencher| {
            bencher.iter(|| {
                black_box(
                    DiskStore::open(&dir, &Options::default())
                        .expect("open")
                        .len(),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_append,
    bench_reads,
    bench_ingest,
    bench_reopen
);
criterion_main!(benches);
