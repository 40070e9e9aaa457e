//! Profiling helper: validates a 10,000-msg feed through `Db::add` a few times.
//! `cargo build --release -p benches --example profile_ingest && perf record …`

fn main() {
    let (msgs, _) = benches::fixtures::linear_feed(10_000);
    for _ in 0..3 {
        let mut db = proto::db::Db::new(proto::store::MemStore::new());
        for msg in msgs.clone() {
            db.add(msg, None).expect("valid");
        }
    }
}
