//! Session actor and project supervisor over the memory backend: send, queue,
//! abort, restart from the store.

use std::time::Duration;

mod support;

use sessiond_actors::{AbortReply, ProjectHandle};
use sessiond_store::backend::memory::memory;
use sessiond_store::testing::wait_until;
use sessiond_store::{Role, RunOutcome, SessionStatus};
use support::*;

#[tokio::test]
async fn send_runs_the_prompt_and_commits_the_reply() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"input_tokens": 3, "cost_usd": 0.5})).await;
    let (_project, session) = activate(&b, &meta).await;
    let receipt = session.send("hi".into(), None).await.unwrap();
    assert_eq!((receipt.message_seq, receipt.queued), (1, false));
    // The prompt is durable when send returns.
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(log[0].content, "hi");
    let done = wait_idle_with(&b, &meta, 2).await;
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].role, log[1].content.as_str()),
        (Role::Assistant, "echo: hi")
    );
    assert_eq!(log[1].run_id, Some(receipt.run_id));
    assert_eq!(done.usage.input_tokens, 3);
    assert_eq!(done.last_run.unwrap().outcome, Some(RunOutcome::Completed));
    // Usage sums over runs.
    session.send("again".into(), None).await.unwrap();
    let done = wait_idle_with(&b, &meta, 4).await;
    assert_eq!(done.usage.input_tokens, 6);
    assert!((done.usage.cost_usd - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn abort_ends_a_hanging_run_and_the_queue_moves_on() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"hang": true})).await;
    let (_project, session) = activate(&b, &meta).await;
    let first = session.send("one".into(), None).await.unwrap();
    let second = session.send("two".into(), None).await.unwrap();
    assert!(second.queued);
    wait_until("running", Duration::from_secs(5), || async {
        let m = session.meta().await.unwrap();
        (m.status == SessionStatus::Running).then_some(())
    })
    .await;
    let reply = session.abort(None).await.unwrap();
    assert_eq!(
        reply,
        AbortReply::Aborted {
            run_id: first.run_id
        }
    );
    // The second prompt runs next (and hangs too): abort it by id.
    wait_until("second run", Duration::from_secs(5), || async {
        let m = session.meta().await.unwrap();
        (m.last_run.as_ref().map(|r| r.run_id) == Some(second.run_id)).then_some(())
    })
    .await;
    assert_eq!(
        session.abort(Some(first.run_id)).await.unwrap(),
        AbortReply::NoActiveRun
    );
    assert_eq!(
        session.abort(Some(second.run_id)).await.unwrap(),
        AbortReply::Aborted {
            run_id: second.run_id
        }
    );
    assert_eq!(session.abort(None).await.unwrap(), AbortReply::NoActiveRun);
    let stored = stored(&b, &meta).await;
    assert_eq!(stored.status, SessionStatus::Idle);
    assert_eq!(stored.last_run.unwrap().outcome, Some(RunOutcome::Aborted));
}

#[tokio::test]
async fn a_restarted_actor_continues_the_log_and_interrupts_the_lost_run() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"hang": true})).await;
    {
        let project = ProjectHandle::spawn(context(&b), meta.tenant.clone(), meta.project.clone())
            .await
            .unwrap();
        let session = project.activate(meta.clone()).await.unwrap();
        session.send("lost".into(), None).await.unwrap();
        wait_until("running", Duration::from_secs(5), || async {
            let m = stored(&b, &meta).await;
            (m.status == SessionStatus::Running).then_some(())
        })
        .await;
        // A node that vanishes without a word: stop everything, no cleanup writes.
        project.stop();
    }
    // A new "node" (fresh context: its own writer) picks the session up.
    let project = ProjectHandle::spawn(context(&b), meta.tenant.clone(), meta.project.clone())
        .await
        .unwrap();
    let stored = stored(&b, &meta).await;
    let session = project.activate(stored).await.unwrap();
    let m = wait_until("interrupted", Duration::from_secs(5), || async {
        let m = session.meta().await.unwrap();
        (m.status == SessionStatus::Interrupted).then_some(m)
    })
    .await;
    assert_eq!(m.last_run.unwrap().outcome, Some(RunOutcome::Interrupted));
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(log.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(log[1].role, Role::System);
    let r = session.send("next".into(), None).await.unwrap();
    assert_eq!(r.message_seq, 3);
}

#[tokio::test]
async fn a_graceful_stop_releases_the_lease() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let (project, session) = activate(&b, &meta).await;
    session.send("hi".into(), None).await.unwrap();
    wait_idle_with(&b, &meta, 2).await;
    assert!(
        b.leases
            .owner(&meta.tenant, meta.id)
            .await
            .unwrap()
            .is_some()
    );
    project.stop_and_wait().await;
    assert_eq!(b.leases.owner(&meta.tenant, meta.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_panicking_driver_fails_its_run_and_the_session_goes_on() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"panic": "boom"})).await;
    let (_project, session) = activate(&b, &meta).await;
    session.send("one".into(), None).await.unwrap();
    session.send("two".into(), None).await.unwrap();
    // Both runs end (the second after the first): nothing is wedged.
    let m = wait_until("both runs failed", Duration::from_secs(10), || async {
        let m = session.meta().await.unwrap();
        (m.status == SessionStatus::Idle && m.last_seq == 4).then_some(m)
    })
    .await;
    let last = m.last_run.unwrap();
    assert_eq!(last.outcome, Some(RunOutcome::Failed));
    assert!(
        last.error
            .unwrap()
            .contains("driver panicked: scripted panic: boom")
    );
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(log[1].role, Role::System);
}
