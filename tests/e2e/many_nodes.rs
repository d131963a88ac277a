//! Three `sessiond` processes on one Redis (and on a 3-master Redis Cluster):
//! forwarding to the node that holds a session, events on any node, takeover after
//! kill -9, fencing of a frozen owner, and handover on SIGTERM.

use serde_json::{Value, json};

use crate::harness::*;
use sessiond_store::testing::redis_cluster::RedisCluster;

/// Short leases so failover fits in a test; the recovery sweep runs often.
/// (`test_hooks` lets a test crash a session actor on purpose.)
pub(crate) const CONFIG: &str = "[session]\nlease_ttl_ms = 1000\ncall_timeout_ms = 3000\ntest_hooks = true\n\
                      [node]\nrecovery_interval_ms = 200\ndrain_timeout_ms = 5000\n";

/// A node on `redis` with a fixed id (kept across restarts, like a deployment).
pub(crate) fn node(redis: &str, id: &str, dir: &std::path::Path) -> Server {
    node_with(redis, id, dir, CONFIG)
}

/// As [`node`], with its own configuration.
pub(crate) fn node_with(redis: &str, id: &str, dir: &std::path::Path, toml: &str) -> Server {
    let config = dir.join(format!("{id}.toml"));
    std::fs::write(&config, toml).unwrap();
    Server::start_with(
        vec![
            "--redis".into(),
            redis.into(),
            "--node-id".into(),
            id.into(),
            "--config".into(),
            config.display().to_string(),
        ],
        None,
    )
}

pub(crate) fn three(redis: &str, dir: &std::path::Path) -> Vec<Server> {
    ["a", "b", "c"]
        .iter()
        .map(|id| node(redis, id, dir))
        .collect()
}

/// The node (index) whose `GET /v1/node` lists the session as owned.
pub(crate) async fn owner(nodes: &[Server], id: &str) -> usize {
    wait_until("an owner", DEADLINE, || async {
        for (i, n) in nodes.iter().enumerate() {
            let a = n.api().get("/v1/node").await;
            if a.status == 200
                && a.body["owned_sessions"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|s| s == id))
            {
                return Some(i);
            }
        }
        None
    })
    .await
}

fn seqs(h: &[Value]) -> Vec<u64> {
    h.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

async fn create_send_stream(redis: &str) {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three(redis, dir.path());
    let (a, b, c) = (nodes[0].api(), nodes[1].api(), nodes[2].api());
    // Created with a prompt on A: A holds it.
    let created = a
        .ok(
            "/v1/projects/demo/sessions",
            json!({"prompt": "first", "driver_options": {"chunks": 3, "delay_ms": 5}}),
            201,
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    assert_eq!(owner(&nodes, &id).await, 0);
    let mut stream = c.events(&id, Some(0), None).await;
    // Sent on B: forwarded to A, answered as if local (queued behind the run).
    for p in ["second", "third"] {
        let r = b.send(&id, p).await;
        assert!(r["message_seq"].as_u64().unwrap() > 1, "{r}");
    }
    // Three runs of a prompt and three chunks each.
    let got = stream.messages_until(0, 12).await;
    assert_eq!(got.len(), 12, "each message once, in order, on C");
    let users: Vec<_> = got
        .iter()
        .filter(|m| m.data["role"] == "user")
        .map(|m| m.data["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, vec!["first", "second", "third"]);
    assert_eq!(owner(&nodes, &id).await, 0, "still on A");
    // Other commands forward too.
    let paused = b
        .ok(&format!("/v1/sessions/{id}/pause"), json!({}), 200)
        .await;
    assert_eq!(paused["session"]["paused"], true);
    c.ok(&format!("/v1/sessions/{id}/resume"), json!({}), 200)
        .await;
    let peers = a.fetch("/v1/node").await["peers"].as_array().unwrap().len();
    assert_eq!(peers, 2, "A sees B and C");
    // What an operator sees: B forwarded two sends and a pause, A served them
    // (and C's resume).
    let answered = b
        .metric(r#"sessiond_forwards_total{outcome="answered"}"#)
        .await;
    assert!(answered >= 3.0, "B forwarded {answered}");
    let served = a
        .metric(r#"sessiond_forwards_served_total{outcome="ok"}"#)
        .await;
    assert!(served >= 4.0, "A served {served}");
    assert!(b.metric("sessiond_forward_seconds_count").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_a_send_on_b_stream_on_c() {
    let redis = RedisServer::start();
    create_send_stream(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_a_send_on_b_stream_on_c_on_a_cluster() {
    let cluster = RedisCluster::start();
    create_send_stream(&cluster.url()).await;
}

/// kill -9 of the owner mid-run, 20 times: another node closes the run as
/// interrupted within the lease TTL + 2 s and takes new prompts; every acknowledged
/// prompt is in the transcript, which stays dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_mid_run_loses_nothing_acknowledged() {
    let redis = RedisServer::start();
    kill_the_owner(&redis.url(), 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_mid_run_loses_nothing_acknowledged_on_a_cluster() {
    let cluster = RedisCluster::start();
    kill_the_owner(&cluster.url(), 20).await;
}

async fn kill_the_owner(redis: &str, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = three(redis, dir.path());
    let ttl_plus_2s = std::time::Duration::from_millis(1000 + 2000);
    let id = nodes[0]
        .api()
        .create(
            "demo",
            json!({"driver_options": {"chunks": 20, "delay_ms": 100}}),
        )
        .await;
    let mut acked: Vec<String> = Vec::new();
    for round in 0..rounds {
        let holder_api = nodes[round % 3].api();
        let prompt = format!("round {round}");
        let r = holder_api.send(&id, &prompt).await;
        acked.push(prompt);
        let owner_ix = owner(&nodes, &id).await;
        // The run is going (its first chunk is committed) when the owner dies.
        wait_until("run going", DEADLINE, || async {
            let s = holder_api.session(&id).await;
            (s["last_run"]["run_id"] == r["run_id"] && s["status"] == "running").then_some(())
        })
        .await;
        nodes[owner_ix].kill9();
        let survivor = nodes[(owner_ix + 1) % 3].api();
        wait_until("the run marked interrupted", ttl_plus_2s, || async {
            let s = survivor.session(&id).await;
            (s["last_run"]["run_id"] == r["run_id"] && s["last_run"]["outcome"] == "interrupted")
                .then_some(())
        })
        .await;
        nodes[owner_ix] = node(redis, ["a", "b", "c"][owner_ix], dir.path());
    }
    // Each lost run was counted as interrupted by the node that restored it.
    let mut interrupted = 0.0;
    for n in &nodes {
        interrupted += n
            .api()
            .metric(r#"sessiond_runs_ended_total{outcome="interrupted"}"#)
            .await;
    }
    assert!(interrupted >= 1.0, "no interrupted run in the metrics");
    // A new prompt is accepted and runs to the end.
    let api = nodes[1].api();
    let r = api.send(&id, "after the storm").await;
    acked.push("after the storm".into());
    let s = wait_until("last run done", DEADLINE * 2, || async {
        let s = api.session(&id).await;
        (s["last_run"]["run_id"] == r["run_id"] && s["last_run"]["outcome"] == "completed")
            .then_some(s)
    })
    .await;
    let history = api.history(&id).await;
    assert_eq!(
        seqs(&history),
        (1..=s["last_seq"].as_u64().unwrap()).collect::<Vec<_>>()
    );
    let prompts: Vec<&str> = history
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        prompts,
        acked.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

async fn frozen_owner_is_fenced(redis: &str) {
    let dir = tempfile::tempdir().unwrap();
    let nodes = three(redis, dir.path());
    let a = nodes[0].api();
    let created = a
        .ok(
            "/v1/projects/demo/sessions",
            json!({"prompt": "long", "driver_options": {"chunks": 50, "delay_ms": 100}}),
            201,
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    let run = created["run"]["run_id"].clone();
    wait_until("run going", DEADLINE, || async {
        let s = a.session(&id).await;
        (s["last_seq"].as_u64() >= Some(3)).then_some(())
    })
    .await;
    nodes[0].signal("STOP");
    // B's request finds A silent; once A's lease runs out, B takes the session.
    let b = nodes[1].api();
    let r = wait_until("B takes over", DEADLINE, || async {
        let a = b
            .post(
                &format!("/v1/sessions/{id}/messages"),
                json!({"prompt": "on b"}),
            )
            .await;
        (a.status == 202).then_some(a.body)
    })
    .await;
    let s = wait_until("old run interrupted", DEADLINE, || async {
        let s = b.session(&id).await;
        (s["last_run"]["run_id"] == r["run_id"]).then_some(s)
    })
    .await;
    let interrupted_at = b
        .history(&id)
        .await
        .iter()
        .find(|m| m["role"] == "system" && m["run_id"] == run)
        .map(|m| m["seq"].as_u64().unwrap())
        .expect("the interruption note");
    nodes[0].signal("CONT");
    // A learns it lost the lease and lets the session go.
    wait_until("A lets go", DEADLINE, || async {
        let n = a.fetch("/v1/node").await;
        (!n["owned_sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == id.as_str()))
        .then_some(())
    })
    .await;
    // A noticed through a refused renewal or a fenced write, whichever came first.
    let noticed = a.metric("sessiond_leases_lost_total").await
        + a.metric(r#"sessiond_writer_failed_writes_total{reason="fenced"}"#)
            .await;
    assert!(noticed >= 1.0, "A's metrics show no lost lease");
    b.wait_settled(&id, s["last_seq"].as_u64().unwrap() + 1)
        .await;
    let history = b.history(&id).await;
    assert_eq!(
        seqs(&history),
        (1..=history.len() as u64).collect::<Vec<_>>()
    );
    // Nothing of A's run after B closed it: A's late writes were fenced.
    assert!(
        history
            .iter()
            .all(|m| m["run_id"] != run || m["seq"].as_u64().unwrap() <= interrupted_at),
        "the frozen owner wrote after the takeover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_is_fenced_after_the_takeover() {
    let redis = RedisServer::start();
    frozen_owner_is_fenced(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_is_fenced_after_the_takeover_on_a_cluster() {
    let cluster = RedisCluster::start();
    frozen_owner_is_fenced(&cluster.url()).await;
}

/// SIGTERM of the owner: it lets its session go at once, so another node serves it
/// long before the (here 30 s) lease would have run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_owner_hands_over_before_the_lease_would_expire() {
    let redis = RedisServer::start();
    sigterm_hands_over(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_owner_hands_over_before_the_lease_would_expire_on_a_cluster() {
    let cluster = RedisCluster::start();
    sigterm_hands_over(&cluster.url()).await;
}

async fn sigterm_hands_over(redis: &str) {
    let dir = tempfile::tempdir().unwrap();
    let long = "[session]\nlease_ttl_ms = 30000\ncall_timeout_ms = 3000\n[node]\ndrain_timeout_ms = 5000\n";
    let start = |id: &str| {
        let config = dir.path().join(format!("{id}.toml"));
        std::fs::write(&config, long).unwrap();
        Server::start_with(
            vec![
                "--redis".into(),
                redis.into(),
                "--node-id".into(),
                id.into(),
                "--config".into(),
                config.display().to_string(),
            ],
            None,
        )
    };
    let (mut a, b) = (start("a"), start("b"));
    let created = a
        .api()
        .ok(
            "/v1/projects/demo/sessions",
            json!({"prompt": "drain me", "driver_options": {"chunks": 5, "delay_ms": 100}}),
            201,
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    // The run in progress is let finish (drain), then the lease is released.
    assert!(a.sigterm_and_wait().success());
    let s = b.api().session(&id).await;
    assert_eq!(
        s["last_run"]["outcome"], "completed",
        "drained, not cut: {s}"
    );
    let r = b
        .api()
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({"prompt": "on b"}),
        )
        .await;
    assert_eq!(r.status, 202, "served at once: {:?}", r.body);
}
