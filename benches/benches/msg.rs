//! Msg-level costs: canonical JSON, msg IDs, signing, one bare Ed25519 verification, one
//! validation, and validating whole feeds incrementally (1,000 and 10,000 msgs, to show
//! linear cost). The target: validating a feed costs at most 1.5× one bare
//! verification per msg. JS reference: `interop/jsbench/bench-msg.js` (docs/benchmarks.md).

use std::hint::black_box;

use benches::fixtures;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, VerifyingKey};
use proto::canon;
use proto::db::Db;
use proto::store::MemStore;
use proto::validate::{self, Digest, Verifier};

fn primitives(c: &mut Criterion) {
    let (msgs, _) = fixtures::linear_feed(10);
    let msg = msgs.last().expect("a post").clone();
    let value = msg.to_value();
    let signable = msg.signable();
    let keypair = fixtures::author();
    let mut group = c.benchmark_group("msg");
    group.throughput(Throughput::Elements(1));
    group.bench_function("canonical_json_whole_msg", |b| {
        b.iter(|| canon::to_string(black_box(&value)))
    });
    group.bench_function("msg_id", |b| b.iter(|| black_box(&msg).id()));
    group.bench_function("decode_json", |b| {
        let text = msg.to_json();
        b.iter(|| proto::msg::decode_str(black_box(&text)).expect("valid"));
    });
    group.bench_function("sign", |b| b.iter(|| keypair.sign(black_box(&signable))));
    group.bench_function("ed25519_verify_bare", |b| {
        // What libsodium's crypto_sign_verify_detached does per call: decode the key, verify.
        let public = msg.sigkey.to_bytes();
        let signature = Signature::from_bytes(msg.sig.bytes());
        b.iter(|| {
            let key = VerifyingKey::from_bytes(black_box(&public)).expect("valid key");
            key.verify_strict(black_box(&signable), &signature)
                .expect("valid signature");
        });
    });
    group.bench_function("ed25519_verify_decoded_key", |b| {
        let key = VerifyingKey::from_bytes(&msg.sigkey.to_bytes()).expect("valid key");
        let signature = Signature::from_bytes(msg.sig.bytes());
        b.iter(|| {
            key.verify_strict(black_box(&signable), &signature)
                .expect("valid signature")
        });
    });
    group.finish();
}

fn validation(c: &mut Criterion) {
    let (msgs, _) = fixtures::linear_feed(10_000);
    let mut group = c.benchmark_group("validate");
    group.sample_size(10);

    // One validation: the next msg of a 1,000-msg feed, against the live tangle.
    let mut db = Db::new(MemStore::new());
    for msg in &msgs[..1_002] {
        db.add(msg.clone(), None).expect("valid fixture");
    }
    let next = msgs[1_002].clone();
    let feed = *next.metadata.tangles.keys().next().expect("a feed msg");
    let account = next.metadata.account.id().expect("an account");
    let sigkeys = db
        .sigkeys(&account, next.metadata.account_tips.as_deref())
        .expect("mem");
    let tangle = db.tangle(&feed).expect("mem").clone();
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_msg", |b| {
        let mut verifier = Verifier::new();
        b.iter(|| {
            let digest = Digest::of(black_box(&next));
            validate::validate(&next, &digest, &tangle, &sigkeys, &mut verifier).expect("valid");
        });
    });
    group.bench_function("single_msg_fresh_verifier", |b| {
        b.iter(|| {
            let digest = Digest::of(black_box(&next));
            validate::validate(&next, &digest, &tangle, &sigkeys, &mut Verifier::new())
                .expect("valid");
        });
    });

    // Whole feeds, msg by msg through Db::add (the full add rules), as a receiving peer does.
    for count in [1_000usize, 10_000] {
        let feed: Vec<_> = msgs[..count + 2].to_vec();
        group.throughput(Throughput::Elements(count as u64 + 2));
        group.bench_function(format!("feed_incremental_{count}"), |b| {
            b.iter_batched(
                || feed.clone(),
                |feed| {
                    let mut db = Db::new(MemStore::new());
                    for msg in feed {
                        db.add(msg, None).expect("valid fixture");
                    }
                    db
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, primitives, validation);
criterion_main!(benches);
