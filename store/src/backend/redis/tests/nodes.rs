//! The keys behind the node registry, what `nodes` and `held` make of keys changed
//! behind their back, and the node inbox between two connections, against a real
//! redis-server.

use bytes::Bytes;
use redis::AsyncCommands;

use super::{next, raw};
use crate::backend::Backend;
use crate::backend::redis::connect_redis;
use crate::codec;
use crate::event_bus::{BusSignal, Channel};
use crate::ids::{NodeId, SessionId};
use crate::node_registry::NodeRecord;
use crate::records::now_ms;
use crate::testing::conformance::fresh_tenant;
use crate::testing::redis_server::RedisServer;

const HOUR_MS: i64 = 60 * 60 * 1000;

fn fresh_node() -> NodeId {
    NodeId::new(format!("n{}", uuid::Uuid::now_v7().simple())).unwrap()
}

#[tokio::test]
async fn node_keys_are_laid_out_as_documented() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let node = fresh_node();
    let rec = NodeRecord {
        id: node.clone(),
        advertise: Some("http://10.0.0.1:8080".into()),
        started_at_ms: now_ms(),
        expires_at_ms: now_ms() + 10_000,
    };
    b.nodes.heartbeat(&rec).await.unwrap();
    let t = fresh_tenant();
    let sid = SessionId::generate();
    b.nodes.add_held(&node, &t, sid).await.unwrap();

    let mut r = raw(&server.url()).await;
    let score: i64 = r.zscore("sd:nodes", node.as_str()).await.unwrap();
    assert_eq!(score, rec.expires_at_ms);
    let stored: Vec<u8> = r.get(format!("sd:node:{node}")).await.unwrap();
    assert_eq!(codec::decode::<NodeRecord>(&stored).unwrap(), rec);
    // Kept about an hour past the expiry it announces.
    let ttl: i64 = r.pttl(format!("sd:node:{node}")).await.unwrap();
    assert!(ttl > HOUR_MS && ttl <= HOUR_MS + 10_000, "{ttl}");
    let members: Vec<String> = r.smembers(format!("sd:node:{node}:held")).await.unwrap();
    assert_eq!(members, [format!("{t}|{sid}")]);

    b.nodes.remove_node(&node).await.unwrap();
    for key in [format!("sd:node:{node}"), format!("sd:node:{node}:held")] {
        let exists: bool = r.exists(&key).await.unwrap();
        assert!(!exists, "{key} removed");
    }
    let score: Option<i64> = r.zscore("sd:nodes", node.as_str()).await.unwrap();
    assert_eq!(score, None);
}

#[tokio::test]
async fn a_listed_node_whose_record_is_gone_is_built_from_its_score() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let node = fresh_node();
    let rec = NodeRecord {
        id: node.clone(),
        advertise: Some("http://10.0.0.2:8080".into()),
        started_at_ms: now_ms() - 5 * HOUR_MS,
        expires_at_ms: now_ms() - 2 * HOUR_MS,
    };
    b.nodes.heartbeat(&rec).await.unwrap();
    let sid = SessionId::generate();
    let t = fresh_tenant();
    b.nodes.add_held(&node, &t, sid).await.unwrap();
    // The record's PX ran out; the ZSET entry and the held set have none.
    let mut r = raw(&server.url()).await;
    let _: () = r.del(format!("sd:node:{node}")).await.unwrap();

    let listed = b.nodes.nodes().await.unwrap();
    assert_eq!(
        listed,
        vec![NodeRecord {
            id: node.clone(),
            advertise: None,
            started_at_ms: 0,
            expires_at_ms: rec.expires_at_ms,
        }],
        "still in sight, dead, so a survivor takes its sessions"
    );
    assert_eq!(b.nodes.held(&node).await.unwrap(), vec![(t, sid)]);
    b.nodes.remove_node(&node).await.unwrap();
    assert!(b.nodes.nodes().await.unwrap().is_empty());
}

#[tokio::test]
async fn unparseable_held_members_and_node_ids_are_skipped() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let node = fresh_node();
    let (t, sid) = (fresh_tenant(), SessionId::generate());
    b.nodes.add_held(&node, &t, sid).await.unwrap();
    let mut r = raw(&server.url()).await;
    let _: () = r
        .sadd(
            format!("sd:node:{node}:held"),
            &["junk", "Bad|tenant", "acme|not-a-uuid"],
        )
        .await
        .unwrap();
    let _: () = r.zadd("sd:nodes", "not a node id", 5).await.unwrap();
    assert_eq!(b.nodes.held(&node).await.unwrap(), vec![(t, sid)]);
    let listed = b.nodes.nodes().await.unwrap();
    assert_eq!(
        listed.iter().map(|n| &n.id).collect::<Vec<_>>(),
        vec![&node]
    );
}

/// What one backend publishes on a node's inbox reaches a subscriber on another
/// connection (another node), and stops reaching it once it unsubscribed.
pub(super) async fn inbox_crosses_connections(a: &Backend, b: &Backend) {
    let node = fresh_node();
    let inbox = Channel::node(&node);
    let mut sub = a.bus.subscribe(&inbox).await.unwrap();
    b.bus
        .publish(&inbox, Bytes::from_static(b"call"))
        .await
        .unwrap();
    assert_eq!(
        next(&mut sub).await,
        BusSignal::Payload(Bytes::from_static(b"call"))
    );
    // And back: the reply goes to the caller's own inbox.
    let caller = Channel::node(&fresh_node());
    let mut replies = b.bus.subscribe(&caller).await.unwrap();
    a.bus
        .publish(&caller, Bytes::from_static(b"reply"))
        .await
        .unwrap();
    assert_eq!(
        next(&mut replies).await,
        BusSignal::Payload(Bytes::from_static(b"reply"))
    );
}

#[tokio::test]
async fn a_node_inbox_reaches_another_connection() {
    let server = RedisServer::start();
    let a = connect_redis(&server.url()).await.unwrap();
    let b = connect_redis(&server.url()).await.unwrap();
    inbox_crosses_connections(&a, &b).await;
}

/// Inboxes and project channels are sharded channels, as session channels are: a
/// cluster then keeps each on its slot's shard instead of broadcasting it.
#[tokio::test]
async fn every_channel_is_a_sharded_channel() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let t = fresh_tenant();
    let channels = [
        Channel::node(&fresh_node()),
        Channel::project(&t, &crate::ids::ProjectId::new("web").unwrap()),
        Channel::session(&t, SessionId::generate()),
    ];
    let mut subs = Vec::new();
    for ch in &channels {
        subs.push(b.bus.subscribe(ch).await.unwrap());
    }
    let mut r = raw(&server.url()).await;
    for ch in &channels {
        let counts = |kind: &'static str| {
            let mut r = r.clone();
            let name = ch.as_str().to_owned();
            async move {
                let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                    .arg(kind)
                    .arg(name)
                    .query_async(&mut r)
                    .await
                    .unwrap();
                counts[0].1
            }
        };
        assert_eq!(counts("SHARDNUMSUB").await, 1, "{ch} is sharded");
        assert_eq!(counts("NUMSUB").await, 0, "{ch} is not a plain channel");
        let n: i64 = redis::cmd("SPUBLISH")
            .arg(ch.as_str())
            .arg("x")
            .query_async(&mut r)
            .await
            .unwrap();
        assert_eq!(n, 1, "SPUBLISH on {ch} reaches the node");
    }
    for sub in &mut subs {
        assert_eq!(
            next(sub).await,
            BusSignal::Payload(Bytes::from_static(b"x"))
        );
    }
}
