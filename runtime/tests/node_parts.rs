//! The node's bounds and its stop, in process on the memory store: the resident
//! count is exact on every exit path, an idle project supervisor stops (and a
//! request after it starts another), and a stop waits for every task the node
//! started before it leaves the registry.

use std::time::Duration;

use serde_json::json;
use sessiond_client::ops::{DeleteSession, SendPrompt};
use sessiond_runtime::node::{Drivers, NewSession};
use sessiond_runtime::{Config, Node};
use sessiond_store::testing::wait_until;
use sessiond_store::{NodeId, ProjectId, RunId, RunOutcome, SessionId, SessionMeta, TenantId};

/// Generous: the idle test runs on paused time, where waiting costs nothing.
const WAIT: Duration = Duration::from_secs(120);

fn config(id: &str) -> Config {
    let mut config = Config::for_tests();
    config.node_id = Some(NodeId::new(id).unwrap());
    config
}

fn send(prompt: &str) -> SendPrompt {
    SendPrompt {
        prompt: prompt.into(),
        idempotency_key: None,
    }
}

/// Creates a session in project `p` with scripted `options`, sending `prompt`.
async fn create(node: &Node, options: serde_json::Value, prompt: Option<&str>) -> SessionMeta {
    let new = NewSession {
        driver_options: options.as_object().cloned().unwrap(),
        ..NewSession::default()
    };
    let tenant = node.config().tenant.clone();
    let project = ProjectId::new("p").unwrap();
    let (meta, _) = node
        .create_session(&tenant, &project, new, prompt.map(String::from))
        .await
        .unwrap();
    meta
}

async fn stored(node: &Node, tenant: &TenantId, id: SessionId) -> SessionMeta {
    node.get_session(tenant, id).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_idle_supervisor_stops_and_the_next_request_starts_another() {
    let mut config = config("idle-a");
    config.session.idle_after = Duration::from_secs(5);
    config.session.project_idle_after = Duration::from_secs(1);
    let node = Node::with_backend(
        config,
        sessiond_store::backend::memory::memory(),
        Drivers::with_scripted(),
    );
    let tenant = node.config().tenant.clone();
    let meta = create(&node, json!({}), Some("hi")).await;
    assert_eq!((node.resident_count(), node.supervisor_count()), (1, 1));
    // The session passivates, then its supervisor, idle, stops: nothing is left.
    wait_until("the session and its supervisor stopped", WAIT, || async {
        (node.resident_count() == 0 && node.supervisor_count() == 0).then_some(())
    })
    .await;
    // The next request starts a supervisor again and is served.
    let receipt = node.execute(&tenant, meta.id, send("again")).await.unwrap();
    assert_eq!(receipt.message_seq, 3);
    assert_eq!((node.resident_count(), node.supervisor_count()), (1, 1));
    // A retention sweep starts a supervisor for a project with nothing resident;
    // it stops again.
    let other = ProjectId::new("q").unwrap();
    node.sweep_project(&tenant, &other).await.unwrap();
    assert_eq!(node.supervisor_count(), 2);
    wait_until("the sweep's supervisor stopped", WAIT, || async {
        (node.supervisor_count() == 1).then_some(())
    })
    .await;
    node.shutdown().await;
    assert_eq!((node.resident_count(), node.supervisor_count()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resident_count_follows_a_crash_restart_and_a_delete() {
    let mut config = config("count-a");
    // The scripted driver's `crash_actor` is honoured only with test hooks on.
    config.session.test_hooks = true;
    let node = Node::with_backend(
        config,
        sessiond_store::backend::memory::memory(),
        Drivers::with_scripted(),
    );
    let tenant = node.config().tenant.clone();
    let plain = create(&node, json!({}), None).await;
    let crashing = create(&node, json!({"crash_actor": true}), None).await;
    node.execute(&tenant, plain.id, send("hi")).await.unwrap();
    let r = node
        .execute(&tenant, crashing.id, send("boom"))
        .await
        .unwrap();
    // The actor crashed on the run's first event; its supervisor restarted it,
    // which closed the run as interrupted.
    wait_until("the crashed run closed", WAIT, || async {
        let m = stored(&node, &tenant, crashing.id).await;
        m.last_run
            .is_some_and(|l| {
                l.run_id == RunId::from_uuid(r.run_id) && l.outcome == Some(RunOutcome::Interrupted)
            })
            .then_some(())
    })
    .await;
    // The restarted actor counts once, and the node finds it: a request runs on it
    // (and crashes it again, after answering).
    assert_eq!(node.resident_count(), 2);
    let again = node
        .execute(&tenant, crashing.id, send("again"))
        .await
        .unwrap();
    assert!(again.message_seq > r.message_seq);
    // A deleted session leaves the count.
    node.execute(&tenant, plain.id, DeleteSession::default())
        .await
        .unwrap();
    wait_until("one resident left", WAIT, || async {
        (node.resident_count() == 1).then_some(())
    })
    .await;
    node.shutdown().await;
    assert_eq!(node.resident_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_the_tasks_before_the_node_leaves_the_registry() {
    let shared = sessiond_store::backend::memory::memory();
    let holder = Node::with_backend(config("stop-h"), shared.clone(), Drivers::with_scripted());
    let caller = Node::with_backend(config("stop-c"), shared.clone(), Drivers::with_scripted());
    let tenant = holder.config().tenant.clone();
    let meta = create(&holder, json!({}), Some("hello")).await;
    // Served through the holder's inbox, on one of its tasks.
    caller
        .execute(&tenant, meta.id, send("forwarded"))
        .await
        .unwrap();
    assert!(holder.running_tasks() > 0, "the parts' loops run");
    holder.shutdown().await;
    assert_eq!(
        holder.running_tasks(),
        0,
        "every task ended before the stop returned"
    );
    // Nothing it held was cut, so it left the registry, and no heartbeat (ended
    // before the removal) put it back.
    let nodes = shared.nodes.nodes().await.unwrap();
    assert!(
        nodes.iter().all(|n| n.id != *holder.id()),
        "the stopped node is still registered: {nodes:?}"
    );
    caller.shutdown().await;
    assert_eq!(caller.running_tasks(), 0);
}
