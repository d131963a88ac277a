//! A sharded subscription whose slot moves to another master (resharding,
//! failover): Redis drops it with an `sunsubscribe` push and no disconnection; the
//! bus subscribes the channel again where the slot lives now.

use std::time::Duration;

use bytes::Bytes;

use super::raw;
use crate::backend::redis::connect_redis;
use crate::event_bus::{BusSignal, Channel};
use crate::ids::NodeId;
use crate::testing::redis_cluster::RedisCluster;

async fn cmd<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(conn).await
}

#[tokio::test]
async fn a_subscription_follows_its_slot_to_another_master() {
    let cluster = RedisCluster::start();
    let b = connect_redis(&cluster.url()).await.unwrap();
    let ch = Channel::node(&NodeId::new("moving-node").unwrap());
    let mut sub = b.bus.subscribe(&ch).await.unwrap();
    b.bus
        .publish(&ch, Bytes::from_static(b"before"))
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), sub.recv())
            .await
            .unwrap(),
        Some(BusSignal::Payload(Bytes::from_static(b"before")))
    );

    let mut masters = Vec::new();
    for n in cluster.nodes() {
        masters.push(raw(&n.url()).await);
    }
    let slot: i64 = cmd(&mut masters[0], &["CLUSTER", "KEYSLOT", ch.as_str()])
        .await
        .unwrap();
    let slot = slot.to_string();
    let mut ids = Vec::new();
    let mut owner = None;
    for (i, m) in masters.iter_mut().enumerate() {
        ids.push(cmd::<String>(m, &["CLUSTER", "MYID"]).await.unwrap());
        // Only the owner serves a key of the slot (the others answer MOVED).
        if cmd::<Option<String>>(m, &["GET", ch.as_str()])
            .await
            .is_ok()
        {
            owner = Some(i);
        }
    }
    let owner = owner.expect("a master owns the slot");
    let target = (owner + 1) % masters.len();
    // The slot (empty: a channel has no keys) goes to `target` on every master,
    // the new owner first, as redis-cli's resharding does.
    let order = [target, owner, (owner + 2) % masters.len()];
    for i in order {
        let _: () = cmd(
            &mut masters[i],
            &["CLUSTER", "SETSLOT", &slot, "NODE", &ids[target]],
        )
        .await
        .unwrap();
    }
    let _: String = cmd(&mut masters[target], &["CLUSTER", "BUMPEPOCH"])
        .await
        .unwrap();

    // Readers are told to re-read (payloads may have been lost), and what is
    // published afterwards reaches them again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut reset = false;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no payload after the slot moved (reset seen: {reset})"
        );
        // The publish may hit the old owner's MOVED while the client catches up.
        let _ = b.bus.publish(&ch, Bytes::from_static(b"after")).await;
        match tokio::time::timeout(Duration::from_millis(300), sub.recv()).await {
            Ok(Some(BusSignal::Reset)) => reset = true,
            Ok(Some(BusSignal::Payload(p))) if p == Bytes::from_static(b"after") && reset => break,
            Ok(Some(BusSignal::Payload(p))) if p == Bytes::from_static(b"after") => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => {}
        }
    }
}
