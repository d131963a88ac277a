//! Backend tests against a real redis-server: the key layout, DUP handling in the
//! script, byte-exact bus payloads, the bus across a server restart, and failure
//! (not hanging) when the server is gone. `lifecycle`: the keys of archives,
//! idempotency keys, retention policies, the project list and deletes. `nodes`: the
//! node registry's keys and the node inbox between connections.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use redis::AsyncCommands;

use super::connect_redis;
use crate::backend::Backend;
use crate::codec;
use crate::error::StoreError;
use crate::event_bus::{BusSignal, BusSubscription, Channel};
use crate::ids::NodeId;
use crate::lease_store::LeaseGrant;
use crate::records::{BusEvent, Role, SessionMeta, StatusChange};
use crate::session_store::{CommitOutcome, CreateOutcome, SessionWrite};
use crate::testing::conformance::{fresh_tenant, msg, new_meta};
use crate::testing::redis_server::RedisServer;
use crate::testing::wait_until;

mod lifecycle;
mod nodes;
mod slot_move;

const TTL: Duration = Duration::from_secs(10);

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn session(b: &Backend, key: Option<&str>) -> (SessionMeta, u64) {
    let meta = new_meta(&fresh_tenant(), "proj", key);
    assert_eq!(
        b.sessions.create_session(&meta).await.unwrap(),
        CreateOutcome::Created
    );
    let node = NodeId::new("n1").unwrap();
    let LeaseGrant::Granted { fence } = b
        .leases
        .acquire(&meta.tenant, meta.id, &node, TTL)
        .await
        .unwrap()
    else {
        panic!("lease held");
    };
    (meta, fence)
}

fn write(meta: &SessionMeta, fence: u64, seqs: std::ops::RangeInclusive<u64>) -> SessionWrite {
    SessionWrite {
        tenant: meta.tenant.clone(),
        session: meta.id,
        fence,
        messages: seqs
            .map(|s| msg(s, Role::Assistant, &format!("m{s}")))
            .collect(),
        meta: None,
        archive: None,
        idempotency: None,
    }
}

async fn next(sub: &mut BusSubscription) -> BusSignal {
    tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("a bus signal within 10 s")
        .expect("bus open")
}

#[tokio::test]
async fn keys_are_laid_out_as_documented() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let (mut meta, fence) = session(&b, Some("main")).await;
    meta.last_activity_ms += 5;
    let mut w = write(&meta, fence, 1..=2);
    w.meta = Some(meta.clone());
    let out = b.sessions.commit(&[w]).await.unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 2 }]);

    let mut r = raw(&server.url()).await;
    let (t, sid) = (&meta.tenant, meta.id);
    let base = format!("sd:{t}:s:{{{sid}}}");
    let log: redis::streams::StreamRangeReply = r.xrange_all(format!("{base}:log")).await.unwrap();
    let ids: Vec<_> = log.ids.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1-0", "2-0"]);
    let last: String = r.hget(format!("{base}:meta"), "last_seq").await.unwrap();
    assert_eq!(last, "2");
    let project: String = r.hget(format!("{base}:meta"), "project").await.unwrap();
    assert_eq!(project, "proj");
    let rec: Vec<u8> = r.hget(format!("{base}:meta"), "rec").await.unwrap();
    assert_eq!(codec::decode::<SessionMeta>(&rec).unwrap().id, sid);
    let fence_value: String = r.get(format!("{base}:fence")).await.unwrap();
    assert_eq!(fence_value, format!("{fence}|n1"));
    let fence_ttl: i64 = r.pttl(format!("{base}:fence")).await.unwrap();
    assert_eq!(fence_ttl, -1, "the fence never expires");
    let lease: String = r.get(format!("{base}:lease")).await.unwrap();
    assert_eq!(lease, format!("n1|{fence}"));
    let lease_ttl: i64 = r.pttl(format!("{base}:lease")).await.unwrap();
    assert!(lease_ttl > 0 && lease_ttl <= 10_000);
    let score: i64 = r
        .zscore(format!("sd:{t}:p:proj:idx"), sid.to_string())
        .await
        .unwrap();
    assert_eq!(score, meta.last_activity_ms);
    let holder: String = r.hget(format!("sd:{t}:p:proj:keys"), "main").await.unwrap();
    assert_eq!(holder, sid.to_string());
}

#[tokio::test]
async fn a_stale_retry_is_a_dup_in_redis_and_announces_only_new_messages() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let (meta, fence) = session(&b, None).await;
    let mut sub = b
        .bus
        .subscribe(&Channel::session(&meta.tenant, meta.id))
        .await
        .unwrap();
    b.sessions
        .commit(&[write(&meta, fence, 1..=3)])
        .await
        .unwrap();
    assert!(matches!(next(&mut sub).await, BusSignal::Payload(_)));

    // A retry of an old batch, with other contents: Redis keeps the first ones.
    let mut stale = write(&meta, fence, 1..=2);
    stale.messages[0].content = "changed".into();
    let out = b.sessions.commit(&[stale]).await.unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 3 }]);
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].content, "m1");
    let mut r = raw(&server.url()).await;
    let len: usize = r
        .xlen(format!("sd:{}:s:{{{}}}:log", meta.tenant, meta.id))
        .await
        .unwrap();
    assert_eq!(len, 3);

    // Overlap: only 4 is new, and only 4 is announced.
    let overlap = write(&meta, fence, 3..=4);
    let fresh = vec![overlap.messages[1].clone()];
    b.sessions.commit(&[overlap]).await.unwrap();
    let want = codec::encode(&BusEvent::Messages { messages: fresh }).unwrap();
    assert_eq!(next(&mut sub).await, BusSignal::Payload(Bytes::from(want)));
    assert_eq!(
        b.sessions
            .read_log(&meta.tenant, meta.id, 3, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn published_payloads_are_the_encoded_events() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let (mut meta, fence) = session(&b, None).await;
    let mut sub = b
        .bus
        .subscribe(&Channel::session(&meta.tenant, meta.id))
        .await
        .unwrap();
    // Start the log far on (as a long session would be) to exercise the wider
    // integer encodings; the stream is empty, so any id above 0 is accepted.
    let mut r = raw(&server.url()).await;
    let _: () = r
        .hset(
            format!("sd:{}:s:{{{}}}:meta", meta.tenant, meta.id),
            "last_seq",
            70_000,
        )
        .await
        .unwrap();
    meta.error = Some("x".repeat(300));
    let mut w = write(&meta, fence, 70_001..=70_020);
    w.meta = Some(meta.clone());
    let messages = w.messages.clone();
    let out = b.sessions.commit(&[w]).await.unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 70_020 }]);

    let want = codec::encode(&BusEvent::Messages { messages }).unwrap();
    assert_eq!(next(&mut sub).await, BusSignal::Payload(Bytes::from(want)));
    meta.last_seq = 70_020;
    let want = codec::encode(&BusEvent::Status(StatusChange::of(&meta))).unwrap();
    assert_eq!(next(&mut sub).await, BusSignal::Payload(Bytes::from(want)));
    let loaded = b
        .sessions
        .load_session(&meta.tenant, meta.id)
        .await
        .unwrap();
    assert_eq!(loaded.unwrap().last_seq, 70_020);
}

#[tokio::test]
async fn a_quick_resubscribe_is_never_undone() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let ch = Channel::session(&fresh_tenant(), crate::ids::SessionId::generate());
    for i in 0..50 {
        let sub = b.bus.subscribe(&ch).await.unwrap();
        drop(sub);
        let mut sub = b.bus.subscribe(&ch).await.unwrap();
        let payload = Bytes::from(format!("p{i}"));
        b.bus.publish(&ch, payload.clone()).await.unwrap();
        assert_eq!(next(&mut sub).await, BusSignal::Payload(payload));
    }
    // The last reader gone, the node's upstream subscription goes too.
    let mut r = raw(&server.url()).await;
    wait_until("sunsubscribe", Duration::from_secs(5), || {
        let mut r = r.clone();
        let ch = ch.clone();
        async move {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("SHARDNUMSUB")
                .arg(ch.as_str())
                .query_async(&mut r)
                .await
                .unwrap();
            (counts[0].1 == 0).then_some(())
        }
    })
    .await;
    let _: () = redis::cmd("PING").query_async(&mut r).await.unwrap();
}

/// `f` fails as `Unavailable`, and soon (the timeouts work: nothing hangs).
async fn unavailable<T: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = crate::Result<T>>,
) {
    let r = tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hangs"));
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: expected unavailable, got {r:?}"
    );
}

#[tokio::test]
async fn calls_fail_as_unavailable_when_the_server_is_gone() {
    let mut server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let (meta, fence) = session(&b, None).await;
    server.kill();
    let (t, node) = (&meta.tenant, NodeId::new("n1").unwrap());
    let ch = Channel::project(t, &meta.project);
    unavailable("load", b.sessions.load_session(t, meta.id)).await;
    let w = [write(&meta, fence, 1..=1)];
    unavailable("commit", b.sessions.commit(&w)).await;
    unavailable("acquire", b.leases.acquire(t, meta.id, &node, TTL)).await;
    let publish = b.bus.publish(&ch, Bytes::from_static(b"x"));
    unavailable("publish", publish).await;
    unavailable("subscribe", b.bus.subscribe(&ch)).await;
}

/// A redis-server on a given port (the one a killed server used), killed on drop.
struct Restarted {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Restarted {
    async fn on(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(std::env::var("REDIS_SERVER").unwrap_or("redis-server".into()))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("redis://127.0.0.1:{port}");
        wait_until("restarted redis answers", Duration::from_secs(10), || {
            let url = url.clone();
            async move {
                let mut c = redis::Client::open(url)
                    .ok()?
                    .get_multiplexed_async_connection()
                    .await
                    .ok()?;
                redis::cmd("PING").query_async::<String>(&mut c).await.ok()
            }
        })
        .await;
        Self { child, _dir: dir }
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_bus_resubscribes_and_resets_readers_after_a_restart() {
    let mut server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let meta = new_meta(&fresh_tenant(), "proj", None);
    let sch = Channel::session(&meta.tenant, meta.id);
    let pch = Channel::project(&meta.tenant, &meta.project);
    let mut ss = b.bus.subscribe(&sch).await.unwrap();
    let mut ps = b.bus.subscribe(&pch).await.unwrap();

    server.kill();
    assert_eq!(next(&mut ss).await, BusSignal::Reset, "lost connection");
    assert_eq!(next(&mut ps).await, BusSignal::Reset);
    let _restarted = Restarted::on(server.port()).await;
    // The second reset comes once both channels are subscribed again.
    assert_eq!(next(&mut ss).await, BusSignal::Reset, "restored");
    assert_eq!(next(&mut ps).await, BusSignal::Reset);
    b.bus.publish(&pch, Bytes::from_static(b"p")).await.unwrap();
    assert_eq!(
        next(&mut ps).await,
        BusSignal::Payload(Bytes::from_static(b"p"))
    );

    // The new server knows no script: the store loads them again by itself.
    b.sessions.create_session(&meta).await.unwrap();
    let node = NodeId::new("n1").unwrap();
    let LeaseGrant::Granted { fence } = b
        .leases
        .acquire(&meta.tenant, meta.id, &node, TTL)
        .await
        .unwrap()
    else {
        panic!("lease held");
    };
    let out = b
        .sessions
        .commit(&[write(&meta, fence, 1..=1)])
        .await
        .unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 1 }]);
    match next(&mut ss).await {
        BusSignal::Payload(p) => match codec::decode(&p).unwrap() {
            BusEvent::Messages { messages } => assert_eq!(messages[0].seq, 1),
            e => panic!("expected messages, got {e:?}"),
        },
        s => panic!("expected a payload, got {s:?}"),
    }
}

use crate::testing::redis_cluster;

#[tokio::test]
async fn the_suites_pass_on_a_cluster() {
    let cluster = redis_cluster::RedisCluster::start();
    let b = connect_redis(&cluster.url()).await.unwrap();
    crate::testing::conformance::session_store_suite(&b).await;
    crate::testing::conformance::session_lifecycle_suite(&b).await;
    crate::testing::conformance::lease_store_suite(&b).await;
    crate::testing::conformance::event_bus_suite(&b).await;
    crate::testing::conformance::node_registry_suite(&b).await;
    // A node's inbox is a sharded channel: SPUBLISH goes to the master owning its
    // slot, where the other connection subscribed it.
    let other = connect_redis(&cluster.url()).await.unwrap();
    nodes::inbox_crosses_connections(&b, &other).await;
    // The session keys spread over the masters: several sessions' logs, one per
    // slot, each written by a single-slot script.
    let mut writes = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let (meta, fence) = session(&b, None).await;
        writes.push(write(&meta, fence, 1..=2));
        sessions.push(meta);
    }
    let out = b.sessions.commit(&writes).await.unwrap();
    assert!(
        out.iter()
            .all(|o| *o == CommitOutcome::Committed { last_seq: 2 })
    );
    for meta in &sessions {
        let log = b
            .sessions
            .read_log(&meta.tenant, meta.id, 0, 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 2);
    }
}
