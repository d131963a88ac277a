//! A node's graceful stop, in process on the memory store: runs are let finish up
//! to the drain deadline and the stop goes on as soon as the last one ends; a run
//! still going at the deadline is cut and left for the next owner, who marks it
//! interrupted.

use std::time::Duration;

use serde_json::json;
use sessiond_client::ops;
use sessiond_runtime::node::{Drivers, NewSession};
use sessiond_runtime::{Config, Node};
use sessiond_store::testing::wait_until;
use sessiond_store::{NodeId, ProjectId, RunOutcome, SessionId, SessionMeta, SessionStatus};

fn config(drain: Duration) -> Config {
    let mut config = Config::for_tests();
    config.drain_timeout = drain;
    config.node_id = Some(NodeId::new("drain-a").unwrap());
    config
}

/// Creates a session on `node` with a scripted run of `chunks` x `delay_ms`.
async fn start_run(node: &Node, chunks: u64, delay_ms: u64) -> SessionId {
    let new = NewSession {
        driver_options: json!({"chunks": chunks, "delay_ms": delay_ms})
            .as_object()
            .cloned()
            .unwrap(),
        ..NewSession::default()
    };
    let tenant = node.config().tenant.clone();
    let (meta, receipt) = node
        .create_session(
            &tenant,
            &ProjectId::new("p").unwrap(),
            new,
            Some("go".into()),
        )
        .await
        .unwrap();
    assert!(receipt.is_some(), "the prompt was sent");
    meta.id
}

async fn stored(node: &Node, id: SessionId) -> SessionMeta {
    let tenant = node.config().tenant.clone();
    node.backend()
        .sessions
        .load_session(&tenant, id)
        .await
        .unwrap()
        .expect("stored")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_runs_finish_and_goes_on_when_the_last_ends() {
    // A deadline far beyond the runs: the stop must not wait it out.
    let node = Node::start(config(Duration::from_secs(120)), Drivers::with_scripted())
        .await
        .unwrap();
    let short = start_run(&node, 2, 50).await;
    let long = start_run(&node, 6, 100).await;
    let stopping = std::time::Instant::now();
    node.shutdown().await;
    let took = stopping.elapsed();
    for id in [short, long] {
        let meta = stored(&node, id).await;
        let run = meta.last_run.expect("a run");
        assert_eq!(run.outcome, Some(RunOutcome::Completed), "drained, not cut");
        assert_eq!(meta.status, SessionStatus::Idle);
    }
    // The stop goes on once the runs end, not at the 120 s deadline (a generous
    // bound for a loaded machine; the runs take under a second). That the drain is
    // woken rather than looking again each second is checked on the actor
    // (actors/tests/lifecycle.rs).
    assert!(took < Duration::from_secs(60), "the stop took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_session_with_queued_prompts_does_not_hold_the_stop() {
    let node = Node::start(config(Duration::from_secs(120)), Drivers::with_scripted())
        .await
        .unwrap();
    let tenant = node.config().tenant.clone();
    let new = NewSession::default();
    let (meta, _) = node
        .create_session(&tenant, &ProjectId::new("p").unwrap(), new, None)
        .await
        .unwrap();
    node.execute(&tenant, meta.id, ops::Pause {}).await.unwrap();
    let send = ops::SendPrompt {
        prompt: "after the resume".into(),
        idempotency_key: None,
    };
    node.execute(&tenant, meta.id, send).await.unwrap();
    let stopping = std::time::Instant::now();
    node.shutdown().await;
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(60), "the stop took {took:?}");
    // The prompt stays queued, durably, for whoever resumes the session.
    let stored = stored(&node, meta.id).await;
    assert!(stored.paused);
    assert_eq!(stored.queued.len(), 1, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_the_drain_deadline_is_cut_and_the_next_owner_marks_it_interrupted() {
    let node = Node::start(config(Duration::from_millis(300)), Drivers::with_scripted())
        .await
        .unwrap();
    let id = start_run(&node, 1000, 100).await;
    wait_until("the run going", Duration::from_secs(30), || {
        let node = node.clone();
        async move {
            let meta = stored(&node, id).await;
            (meta.status == SessionStatus::Running && meta.last_seq >= 2).then_some(())
        }
    })
    .await;
    node.shutdown().await;
    let cut = stored(&node, id).await;
    assert_eq!(
        cut.last_run.as_ref().and_then(|r| r.outcome),
        None,
        "the run was cut, not closed"
    );

    // The same node started again on the same store takes its session back and
    // closes the cut run as interrupted.
    let backend = node.backend().clone();
    let again = Node::with_backend(
        config(Duration::from_secs(10)),
        backend,
        Drivers::with_scripted(),
    );
    wait_until(
        "the cut run marked interrupted",
        Duration::from_secs(30),
        || {
            let again = again.clone();
            async move {
                let meta = stored(&again, id).await;
                let outcome = meta.last_run.and_then(|r| r.outcome);
                (outcome == Some(RunOutcome::Interrupted)).then_some(())
            }
        },
    )
    .await;
    // Held here again, listed under this node's id (for survivors of its death).
    let tenant = again.config().tenant.clone();
    wait_until("listed as held", Duration::from_secs(30), || {
        let again = again.clone();
        let tenant = tenant.clone();
        async move {
            let held = again.backend().nodes.held(again.id()).await.unwrap();
            held.contains(&(tenant, id)).then_some(())
        }
    })
    .await;
    again.shutdown().await;
}
