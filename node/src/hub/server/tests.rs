//! The hub machine against hostile and careless attendants: tunnels to peers that are not
//! there, floods of tunnels and attendant streams. Each is refused with a clear error and
//! the hub keeps answering.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::transport::muxrpc::codec::Decoder;

const NOW: Duration = Duration::from_secs(1);

/// One attendant: its link and its own muxrpc end.
struct Peer {
    link: LinkId,
    key: PublicKey,
    rpc: Rpc,
}

fn hub() -> HubMachine {
    HubMachine::new("test".to_owned(), 0, Admission::new(true), 7)
}

fn open(hub: &mut HubMachine, n: u8) -> Peer {
    let peer = Peer {
        link: LinkId(u64::from(n)),
        key: PublicKey([n; 32]),
        rpc: Rpc::new(Permissions::AllowAll),
    };
    let outputs = hub.handle(
        NOW,
        HubInput::Opened {
            link: peer.link,
            key: peer.key,
        },
    );
    assert!(
        outputs
            .iter()
            .all(|output| !matches!(output, HubOutput::Close { .. }))
    );
    peer
}

/// Hands `peer`'s queued frames to the hub; then every peer reads what the hub wrote.
fn exchange(hub: &mut HubMachine, from: usize, peers: &mut [Peer]) {
    let mut frames = Vec::new();
    while let Some(frame) = peers[from].rpc.poll_transmit() {
        frames.push(frame);
    }
    let link = peers[from].link;
    let outputs = hub.handle(NOW, HubInput::Frames { link, frames });
    for output in outputs {
        assert_ne!(
            output_close(&output),
            Some(link),
            "the hub closed the caller's connection"
        );
        if let HubOutput::Write { link, bytes } = output {
            let peer = peers
                .iter_mut()
                .find(|peer| peer.link == link)
                .expect("a write to a known link");
            let mut decoder = Decoder::new();
            decoder.push(&bytes);
            while let Some(frame) = decoder.next_frame().expect("the hub writes valid frames") {
                peer.rpc.handle_frame(frame).expect("valid muxrpc");
            }
        }
    }
}

fn output_close(output: &HubOutput) -> Option<LinkId> {
    match output {
        HubOutput::Close { link, .. } => Some(*link),
        _ => None,
    }
}

fn events(peer: &mut Peer) -> Vec<Event> {
    std::iter::from_fn(|| peer.rpc.poll_event()).collect()
}

/// The error each ended call got, by call.
fn refusals(events: &[Event]) -> BTreeMap<CallId, String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::End {
                id,
                error: Some(error),
            } => Some((*id, error.message.clone())),
            _ => None,
        })
        .collect()
}

fn attend(hub: &mut HubMachine, peers: &mut [Peer], index: usize) -> CallId {
    let id = peers[index]
        .rpc
        .call(&["hub", "attendants"], &[], CallType::Source)
        .expect("call");
    exchange(hub, index, peers);
    id
}

fn tunnel(hub: &mut HubMachine, peers: &mut [Peer], from: usize, target: &str) -> CallId {
    let origin = peers[from].key.to_base58();
    let id = peers[from]
        .rpc
        .call(
            &["hub", "createTunnel"],
            &[json!(target), json!(origin)],
            CallType::Duplex,
        )
        .expect("call");
    exchange(hub, from, peers);
    id
}

/// `hub.ping` still gets its answer.
fn answers_ping(hub: &mut HubMachine, peers: &mut [Peer], index: usize) -> bool {
    let id = peers[index]
        .rpc
        .call(&["hub", "ping"], &[], CallType::Async)
        .expect("call");
    exchange(hub, index, peers);
    events(&mut peers[index])
        .iter()
        .any(|event| matches!(event, Event::Response { id: got, result: Ok(_) } if *got == id))
}

#[test]
fn a_tunnel_to_an_unknown_or_departed_attendant_is_refused_and_the_hub_keeps_serving() {
    let mut hub = hub();
    let mut peers = vec![open(&mut hub, 1), open(&mut hub, 2)];
    attend(&mut hub, &mut peers, 0);
    attend(&mut hub, &mut peers, 1);
    let bob = peers[1].key.to_base58();
    let first = tunnel(&mut hub, &mut peers, 0, &bob);
    assert!(!refusals(&events(&mut peers[0])).contains_key(&first));
    assert_eq!(hub.tunnels(), 1);

    let unknown = PublicKey([9; 32]).to_base58();
    let to_unknown = tunnel(&mut hub, &mut peers, 0, &unknown);
    let refused = refusals(&events(&mut peers[0]));
    assert!(
        refused[&to_unknown].contains("appears to be offline"),
        "{refused:?}"
    );

    // Bob leaves: his tunnel ends for Alice, and a new one to him is refused.
    let outputs = hub.handle(
        NOW,
        HubInput::Closed {
            link: peers[1].link,
        },
    );
    assert!(
        outputs
            .iter()
            .all(|output| output_close(output) != Some(peers[0].link))
    );
    assert_eq!(hub.tunnels(), 0);
    assert_eq!(hub.attendants(), vec![peers[0].key]);
    peers.truncate(1);
    let to_departed = tunnel(&mut hub, &mut peers, 0, &bob);
    let refused = refusals(&events(&mut peers[0]));
    assert!(
        refused[&to_departed].contains("appears to be offline"),
        "{refused:?}"
    );

    let garbage = tunnel(&mut hub, &mut peers, 0, "not a key");
    let refused = refusals(&events(&mut peers[0]));
    assert!(
        refused[&garbage].contains("target public key"),
        "{refused:?}"
    );
    assert!(answers_ping(&mut hub, &mut peers, 0));
}

#[test]
fn floods_of_tunnels_and_attendant_streams_stop_at_their_bounds() {
    let mut hub = hub();
    let mut peers = vec![open(&mut hub, 1), open(&mut hub, 2)];
    attend(&mut hub, &mut peers, 1);
    let bob = peers[1].key.to_base58();
    let flood = TUNNELS_PER_ATTENDANT_MAX + 5;
    let calls: Vec<CallId> = (0..flood)
        .map(|_| tunnel(&mut hub, &mut peers, 0, &bob))
        .collect();
    let refused = refusals(&events(&mut peers[0]));
    assert_eq!(
        refused.len(),
        flood - TUNNELS_PER_ATTENDANT_MAX,
        "{refused:?}"
    );
    for call in &calls[TUNNELS_PER_ATTENDANT_MAX..] {
        assert!(refused[call].contains("tunnels open"), "{refused:?}");
    }
    let connects = events(&mut peers[1])
        .iter()
        .filter(|event| matches!(event, Event::Request { name, .. } if name == &["hubClient", "connect"]))
        .count();
    assert_eq!(
        connects, TUNNELS_PER_ATTENDANT_MAX,
        "bob is asked once per admitted tunnel"
    );
    assert_eq!(hub.tunnels(), TUNNELS_PER_ATTENDANT_MAX);

    let streams: Vec<CallId> = (0..ATTENDANT_STREAMS_PER_LINK_MAX + 2)
        .map(|_| attend(&mut hub, &mut peers, 0))
        .collect();
    let refused = refusals(&events(&mut peers[0]));
    for stream in &streams[..ATTENDANT_STREAMS_PER_LINK_MAX] {
        assert!(!refused.contains_key(stream), "{refused:?}");
    }
    for stream in &streams[ATTENDANT_STREAMS_PER_LINK_MAX..] {
        assert!(refused.contains_key(stream), "{refused:?}");
    }
    assert!(answers_ping(&mut hub, &mut peers, 0));
    assert!(answers_ping(&mut hub, &mut peers, 1));
}
