//! The node's registries of live actors, kept by the project supervisors, on the
//! memory backend: a session actor is entered when it is spawned and leaves on
//! every exit path (passivation, delete, crash and restart, mark-error, lease loss,
//! stop), so the resident count is exact; an idle supervisor stops and leaves its
//! registry, and a new one serves the project after it.

mod support;

use std::time::Duration;

use sessiond_actors::ProjectHandle;
use sessiond_store::backend::memory::memory;
use sessiond_store::testing::wait_until;
use sessiond_store::{ChangeReason, RunOutcome, SessionStatus};
use support::*;

/// Generous: most of these tests run on paused time, where waiting costs nothing.
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(start_paused = true)]
async fn a_passivated_session_leaves_the_residents_and_is_entered_again_when_back() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let ctx = context_with(&b, |s| s.idle_after = Duration::from_secs(5));
    let residents = ctx.residents.clone();
    let (project, s) = activate_in(ctx, &meta).await;
    assert_eq!(residents.len(), 1);
    assert!(residents.get(&meta.tenant, meta.id).is_some());
    s.send("hi".into(), None).await.unwrap();
    wait_until("the passivated session left", WAIT, || async {
        residents.is_empty().then_some(())
    })
    .await;
    assert!(!s.is_alive());
    let s = project.activate(stored(&b, &meta).await).await.unwrap();
    assert_eq!(residents.len(), 1);
    assert!(residents.get(&meta.tenant, meta.id).is_some());
    assert_eq!(s.send("again".into(), None).await.unwrap().message_seq, 3);
}

#[tokio::test]
async fn a_deleted_session_leaves_the_residents() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let ctx = context(&b);
    let residents = ctx.residents.clone();
    let (_project, s) = activate_in(ctx, &meta).await;
    assert_eq!(residents.len(), 1);
    s.delete(false, ChangeReason::Delete).await.unwrap();
    wait_until("the deleted session left", WAIT, || async {
        residents.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_lost_lease_takes_the_session_out_of_the_residents() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let ctx = context(&b);
    let (residents, book) = (ctx.residents.clone(), ctx.lease_book.clone());
    let (_project, s) = activate_in(ctx, &meta).await;
    // The lease is in the book once the actor has started.
    s.meta().await.unwrap();
    let lease = book.leases().pop().expect("the session's lease");
    book.lost(&lease);
    wait_until("the session left", WAIT, || async {
        residents.is_empty().then_some(())
    })
    .await;
    assert!(!s.is_alive());
}

#[tokio::test]
async fn a_restarted_actor_replaces_the_crashed_one_and_a_session_marked_error_leaves() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"crash_actor": true})).await;
    let ctx = context(&b);
    let residents = ctx.residents.clone();
    let project = ProjectHandle::spawn(ctx, meta.tenant.clone(), meta.project.clone())
        .await
        .unwrap();
    for crash in 1..=4u64 {
        let s = project.activate(stored(&b, &meta).await).await.unwrap();
        let r = s.send(format!("p{crash}"), None).await.unwrap();
        // Closed as interrupted by the restarted actor (or, after the fourth
        // crash, by the one that marks the session error).
        wait_until("run interrupted", WAIT, || async {
            let m = stored(&b, &meta).await;
            m.last_run
                .as_ref()
                .is_some_and(|l| l.run_id == r.run_id && l.outcome == Some(RunOutcome::Interrupted))
                .then_some(())
        })
        .await;
        assert!(!s.is_alive(), "the crashed incarnation is gone");
        if crash < 4 {
            // The restarted incarnation is the one the registry gives, and the
            // only entry.
            let again = wait_until("the restarted actor entered", WAIT, || async {
                residents.get(&meta.tenant, meta.id)
            })
            .await;
            assert!(again.is_alive());
            assert_eq!(residents.len(), 1);
        }
    }
    wait_until("marked error", WAIT, || async {
        (stored(&b, &meta).await.status == SessionStatus::Error).then_some(())
    })
    .await;
    // The actor that marked it stopped: nothing resident.
    wait_until("the session left", WAIT, || async {
        residents.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stopped_supervisor_leaves_with_its_sessions() {
    let b = memory();
    let (one, two) = (
        create(&b, serde_json::json!({})).await,
        create(&b, serde_json::json!({})).await,
    );
    let ctx = context(&b);
    let (residents, supervisors) = (ctx.residents.clone(), ctx.supervisors.clone());
    let (p1, _) = activate_in(ctx.clone(), &one).await;
    let (p2, _) = activate_in(ctx, &two).await;
    assert_eq!((residents.len(), supervisors.len()), (2, 2));
    p1.stop_and_wait().await;
    // Killed with its supervisor (no cleanup): still no entry left behind.
    p2.stop();
    wait_until("both gone", WAIT, || async {
        (residents.is_empty() && supervisors.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_supervisor_stops_and_a_new_one_serves_the_project() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let ctx = context_with(&b, |s| {
        s.idle_after = Duration::from_secs(20);
        s.project_idle_after = Duration::from_secs(1);
    });
    let supervisors = ctx.supervisors.clone();
    let (project, s) = activate_in(ctx.clone(), &meta).await;
    s.send("hi".into(), None).await.unwrap();
    // A supervisor with a resident session stays past its idle time (virtual
    // time: this advances the clock, it waits for nothing).
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(s.is_alive() && project.is_alive());
    // The session passivates, then the supervisor stops, idle.
    wait_until("the supervisor stopped", WAIT, || async {
        (!project.is_alive() && supervisors.is_empty()).then_some(())
    })
    .await;
    assert!(matches!(
        project.activate(stored(&b, &meta).await).await,
        Err(sessiond_actors::SessionError::Stopped(_))
    ));
    let project = ProjectHandle::spawn(ctx, meta.tenant.clone(), meta.project.clone())
        .await
        .unwrap();
    assert_eq!(supervisors.len(), 1);
    let s = project.activate(stored(&b, &meta).await).await.unwrap();
    assert_eq!(s.send("again".into(), None).await.unwrap().message_seq, 3);
}
