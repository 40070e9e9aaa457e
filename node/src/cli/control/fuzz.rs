//! Body of the `control_channel` fuzz target (`fuzz/fuzz_targets/control_channel.rs`),
//! also run over seeded inputs by `cargo test`: both control channels under arbitrary input,
//! without a node (calls are answered at once). Neither may panic, and both must stay
//! within their named bounds; every standard-input line gets exactly one verdict.

use serde_json::{Map, Value, json};

use super::lines::{CONTROL_LINE_BYTES_MAX, Line, LineSplitter};
use super::request::{METHODS, Request};
use super::session::{Action, ClientSession};
use crate::transport::muxrpc::BodyType;
use crate::transport::muxrpc::codec::{self, Frame, Packet};

/// The first byte picks the channel and the chunk size; the rest is the input.
pub fn control_channel(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode >> 2) * 5 + 1;
    match mode % 3 {
        0 => standard_input(rest, chunk),
        1 => socket(rest, chunk),
        _ => socket(&frames_from(rest), chunk),
    }
}

/// Standard input: bounded lines, one verdict each.
fn standard_input(input: &[u8], chunk: usize) {
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    for piece in input.chunks(chunk) {
        splitter.push(piece, &mut lines);
        assert!(splitter.buffered() <= CONTROL_LINE_BYTES_MAX);
    }
    splitter.finish(&mut lines);
    let newlines = input.iter().filter(|byte| **byte == b'\n').count();
    let trailing = input
        .rsplit(|byte| *byte == b'\n')
        .next()
        .is_some_and(|tail| !tail.is_empty());
    assert_eq!(
        lines.len(),
        newlines + usize::from(trailing),
        "one verdict per line"
    );
    for line in lines {
        match line {
            Line::Text(text) => {
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&text)
                    && let Some(name) = fields.get("cmd").and_then(Value::as_str)
                {
                    let _ = Request::parse(name, &fields);
                }
            }
            other => assert!(other.problem().is_some()),
        }
    }
}

/// The socket: a client session answering every call at once.
fn socket(input: &[u8], chunk: usize) {
    let mut session = ClientSession::default();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        let mut actions = Vec::new();
        let closing = session.receive(piece, &mut actions).is_err();
        answer(&mut session, actions);
        session.check_invariants();
        out.clear();
        session.transmit(&mut out);
        if closing {
            return;
        }
    }
    let mut actions = Vec::new();
    session.transport_closed(&mut actions);
    answer(&mut session, actions);
    session.check_invariants();
}

fn answer(session: &mut ClientSession, actions: Vec<Action>) {
    for action in actions {
        if let Action::Call { id, request } = action {
            if request.is_stream() {
                let _ = session.send(id, "{\"key\":null}".to_owned());
                session.end(id, None);
            } else {
                session.respond(id, Ok(json!({})));
            }
        }
    }
}

/// Builds well-framed calls from fuzz bytes, so the fuzzer reaches request parsing: each
/// `0x00`-separated piece is one call, its first byte the method and call type, the rest
/// its fields' JSON (kept as text when it does not parse).
fn frames_from(data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (index, piece) in data.split(|byte| *byte == 0).enumerate() {
        let Some((&selector, fields)) = piece.split_first() else {
            continue;
        };
        let (name, _) = METHODS
            .get(usize::from(selector) % METHODS.len())
            .copied()
            .unwrap_or(("whoami", "async"));
        let fields = match serde_json::from_slice::<Value>(fields) {
            Ok(value) => value,
            Err(_) => Value::Object(Map::from_iter([(
                "account".to_owned(),
                Value::String(String::from_utf8_lossy(fields).into_owned()),
            )])),
        };
        let stream = selector & 0x80 != 0;
        let mut request = json!({"name": [name], "args": [fields]});
        if stream && let Some(object) = request.as_object_mut() {
            object.insert("type".to_owned(), Value::from("source"));
        }
        let packet = Packet {
            req: i32::try_from(index % 40 + 1).unwrap_or(1),
            stream,
            end: selector & 0x40 != 0,
            body_type: BodyType::Json,
            body: request.to_string().into_bytes(),
        };
        let _ = codec::encode(&Frame::Packet(packet), &mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    /// Deterministic random inputs with every mode byte covered.
    fn inputs(seed: u64) -> impl Iterator<Item = Vec<u8>> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..600u32).map(move |i| {
            let len = (rng.next_u32() % 1500) as usize;
            let mut bytes = vec![0u8; len + 1];
            rng.fill_bytes(&mut bytes);
            // Make newlines, quotes and braces common enough to form lines and JSON.
            for byte in bytes.iter_mut().skip(1) {
                *byte = match *byte % 16 {
                    0 => b'\n',
                    1 => b'"',
                    2 => b'{',
                    3 => b'}',
                    _ => *byte,
                };
            }
            bytes[0] = (i % 256) as u8;
            bytes
        })
    }

    #[test]
    fn control_channel_survives_random_input() {
        inputs(11).for_each(|input| control_channel(&input));
        control_channel(&[]);
        control_channel(&[0]);
        control_channel(&[0, b'\n', 0xff, b'\n']);
    }

    #[test]
    fn control_channel_survives_plausible_commands() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let account = proto::ids::MsgId::from_bytes(&[5; 32]).to_string();
        let lines = [
            json!({"cmd": "whoami"}).to_string(),
            json!({"cmd": "hist", "account": account, "limit": 2}).to_string(),
            json!({"cmd": "follow", "account": account, "goal": "newest-3"}).to_string(),
            json!({"cmd": "log", "live": true, "reverse": true}).to_string(),
            json!({"cmd": "publish", "domain": "post", "data": {"text": "x"}}).to_string(),
            json!({"cmd": "add", "msg": {"metadata": {}}}).to_string(),
        ];
        for i in 0..300u32 {
            let mut data = vec![(i % 256) as u8];
            for _ in 0..(rng.next_u32() % 10) {
                let line = &lines[(rng.next_u32() as usize) % lines.len()];
                if i % 3 == 0 {
                    data.extend_from_slice(line.as_bytes());
                    data.push(b'\n');
                } else {
                    data.push((rng.next_u32() % 256) as u8 | 1);
                    data.extend_from_slice(line.as_bytes());
                    data.push(0);
                }
            }
            control_channel(&data);
        }
    }
}
