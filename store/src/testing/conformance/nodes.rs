//! `NodeRegistry`: heartbeats, the sessions each node holds, and the node inbox on the
//! bus. The memory backend's semantics are the reference.

use std::time::Duration;

use bytes::Bytes;

use crate::backend::Backend;
use crate::event_bus::{BusSignal, BusSubscription, Channel};
use crate::ids::*;
use crate::node_registry::NodeRecord;
use crate::records::now_ms;

/// Node ids no other call uses, in the order given (`<prefix>-a`, `<prefix>-b`, ...).
fn fresh_nodes<const N: usize>() -> [NodeId; N] {
    let prefix = format!("n{}", uuid::Uuid::now_v7().simple());
    std::array::from_fn(|i| {
        let suffix = char::from(b'a' + i as u8);
        NodeId::new(format!("{prefix}-{suffix}")).expect("valid node id")
    })
}

fn record(id: &NodeId, expires_at_ms: i64) -> NodeRecord {
    NodeRecord {
        id: id.clone(),
        advertise: Some(format!("http://{id}.test:8080")),
        started_at_ms: now_ms() - 1_000,
        expires_at_ms,
    }
}

/// The registered nodes among `ours` (a backend may be shared with other calls).
async fn listed(b: &Backend, ours: &[NodeId]) -> Vec<NodeRecord> {
    let mut all = b.nodes.nodes().await.expect("nodes");
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "nodes come by id: {all:?}"
    );
    all.retain(|n| ours.contains(&n.id));
    all
}

async fn held(b: &Backend, node: &NodeId) -> Vec<(TenantId, SessionId)> {
    b.nodes.held(node).await.expect("held")
}

/// Sorted as `held` answers: by tenant, then session id.
fn sorted(mut v: Vec<(TenantId, SessionId)>) -> Vec<(TenantId, SessionId)> {
    v.sort();
    v
}

/// `NodeRegistry`: heartbeats refresh one record per node, dead ones stay listed until
/// removed; held sessions are a set per node; nodes are independent; the node inbox
/// carries payloads on the bus.
pub async fn node_registry_suite(b: &Backend) {
    let r = &b.nodes;
    let [n1, n2, n3] = fresh_nodes();
    let ours = [n1.clone(), n2.clone(), n3.clone()];
    let (t1, t2) = (super::fresh_tenant(), super::fresh_tenant());
    let (s1, s2, s3) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );

    // A node never seen: not listed, holds nothing; letting go of nothing is fine.
    assert!(listed(b, &ours).await.is_empty());
    assert!(held(b, &n1).await.is_empty());
    r.remove_held(&n1, &t1, s1).await.unwrap();
    assert!(
        listed(b, &ours).await.is_empty(),
        "remove_held registers no node"
    );

    // Heartbeat: the record as sent; a second one refreshes it, never duplicates it.
    let first = record(&n1, now_ms() + 10_000);
    r.heartbeat(&first).await.unwrap();
    assert_eq!(listed(b, &ours).await, vec![first.clone()]);
    let refreshed = NodeRecord {
        expires_at_ms: first.expires_at_ms + 5_000,
        ..first.clone()
    };
    r.heartbeat(&refreshed).await.unwrap();
    assert_eq!(listed(b, &ours).await, vec![refreshed.clone()]);

    // A node past its expiry stays listed (survivors look for it), in id order.
    let dead = NodeRecord {
        advertise: None,
        ..record(&n2, now_ms() - 60_000)
    };
    r.heartbeat(&dead).await.unwrap();
    assert_eq!(
        listed(b, &ours).await,
        vec![refreshed.clone(), dead.clone()]
    );

    // Held sessions: a set (adding twice keeps one), by tenant then session.
    r.add_held(&n1, &t1, s1).await.unwrap();
    r.add_held(&n1, &t1, s2).await.unwrap();
    r.add_held(&n1, &t2, s3).await.unwrap();
    r.add_held(&n1, &t1, s1).await.unwrap();
    let all_three = sorted(vec![(t1.clone(), s1), (t1.clone(), s2), (t2.clone(), s3)]);
    assert_eq!(held(b, &n1).await, all_three);
    assert!(held(b, &n2).await.is_empty(), "nodes are independent");
    // The same session in another tenant is another entry.
    r.add_held(&n2, &t2, s1).await.unwrap();
    assert_eq!(held(b, &n2).await, vec![(t2.clone(), s1)]);
    assert_eq!(held(b, &n1).await, all_three);

    // Letting go: once removes, twice is no error; other nodes keep theirs.
    r.remove_held(&n1, &t1, s2).await.unwrap();
    r.remove_held(&n1, &t1, s2).await.unwrap();
    r.remove_held(&n1, &t2, s1).await.unwrap();
    assert_eq!(
        held(b, &n1).await,
        sorted(vec![(t1.clone(), s1), (t2.clone(), s3)])
    );
    assert_eq!(held(b, &n2).await, vec![(t2.clone(), s1)]);
    // Held sessions leave the record alone.
    assert_eq!(
        listed(b, &ours).await,
        vec![refreshed.clone(), dead.clone()]
    );

    // A node that takes a session before its first heartbeat is listed at once, with
    // no address and already expired; its heartbeat then replaces that record.
    let before = now_ms();
    r.add_held(&n3, &t1, s3).await.unwrap();
    let after = now_ms();
    let listed_now = listed(b, &ours).await;
    assert_eq!(listed_now.len(), 3);
    let unannounced = &listed_now[2];
    assert_eq!(unannounced.id, n3);
    assert_eq!(unannounced.advertise, None);
    assert_eq!(unannounced.expires_at_ms, 0);
    assert!(
        (before..=after).contains(&unannounced.started_at_ms),
        "{unannounced:?}"
    );
    let announced = record(&n3, now_ms() + 10_000);
    r.heartbeat(&announced).await.unwrap();
    // A later add_held never undoes the heartbeat.
    r.add_held(&n3, &t2, s3).await.unwrap();
    assert_eq!(
        listed(b, &ours).await,
        vec![refreshed.clone(), dead.clone(), announced.clone()]
    );
    assert_eq!(
        held(b, &n3).await,
        sorted(vec![(t1.clone(), s3), (t2.clone(), s3)])
    );

    // remove_node forgets the record and the held set, and nothing of the others.
    r.remove_node(&n1).await.unwrap();
    assert_eq!(
        listed(b, &ours).await,
        vec![dead.clone(), announced.clone()]
    );
    assert!(held(b, &n1).await.is_empty());
    assert_eq!(held(b, &n2).await, vec![(t2.clone(), s1)]);
    r.remove_node(&n1).await.unwrap();
    // A node that comes back starts with nothing held.
    r.heartbeat(&first).await.unwrap();
    assert_eq!(
        listed(b, &ours).await,
        vec![first.clone(), dead.clone(), announced.clone()]
    );
    assert!(held(b, &n1).await.is_empty());

    for n in &ours {
        r.remove_node(n).await.unwrap();
        assert!(held(b, n).await.is_empty());
    }
    assert!(listed(b, &ours).await.is_empty());

    node_inbox_case(b, &n1, &n2).await;
}

async fn next(sub: &mut BusSubscription) -> Option<BusSignal> {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("a bus signal within 5 s")
}

/// A node's inbox: what is published there reaches its subscribers, and nothing
/// of another node's inbox does.
async fn node_inbox_case(b: &Backend, n1: &NodeId, n2: &NodeId) {
    let inbox = Channel::node(n1);
    let other = Channel::node(n2);
    assert_eq!(inbox.as_str(), format!("sd:node:{n1}:rpc"));
    let mut sub = b.bus.subscribe(&inbox).await.unwrap();
    let mut other_sub = b.bus.subscribe(&other).await.unwrap();

    b.bus
        .publish(&inbox, Bytes::from_static(b"forward-1"))
        .await
        .unwrap();
    b.bus
        .publish(&other, Bytes::from_static(b"for-n2"))
        .await
        .unwrap();
    b.bus
        .publish(&inbox, Bytes::from_static(b"forward-2"))
        .await
        .unwrap();
    // Each inbox gets its own payloads, in order; n2's first is its own.
    for want in [&b"forward-1"[..], b"forward-2"] {
        assert_eq!(
            next(&mut sub).await,
            Some(BusSignal::Payload(Bytes::from(want)))
        );
    }
    assert_eq!(
        next(&mut other_sub).await,
        Some(BusSignal::Payload(Bytes::from_static(b"for-n2")))
    );

    // Dropped and taken again (a node restarting its inbox), it works afresh.
    drop(sub);
    let mut again = b.bus.subscribe(&inbox).await.unwrap();
    b.bus
        .publish(&inbox, Bytes::from_static(b"forward-3"))
        .await
        .unwrap();
    assert_eq!(
        next(&mut again).await,
        Some(BusSignal::Payload(Bytes::from_static(b"forward-3")))
    );
}
