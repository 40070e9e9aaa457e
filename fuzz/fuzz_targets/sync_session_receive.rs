//! Fuzzes a responder sync session fed JSON-lines objects, over a database holding the
//! sync-trace vector's msgs and wanting their tangles; commits are applied as a node does.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proto::fuzzing::SyncTarget;

fn target() -> &'static SyncTarget {
    static TARGET: OnceLock<SyncTarget> = OnceLock::new();
    TARGET.get_or_init(|| {
        let text = include_str!("../../vectors/sync-trace.json");
        let trace: serde_json::Value = serde_json::from_str(text).expect("vector file parses");
        let msgs: Vec<serde_json::Value> = trace["bobMsgs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| entry["msg"].clone())
            .collect();
        SyncTarget::new(&msgs)
    })
}

fuzz_target!(|data: &[u8]| {
    proto::fuzzing::sync_session_receive(target(), data);
});
