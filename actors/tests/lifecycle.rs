//! The session lifecycle beyond send and abort, on the memory backend: steer,
//! pause/resume, patch, reset, compact, delete, idempotency, supervision, passivation,
//! stall and retention. (The same operations run on SQLite and Redis in the
//! end-to-end tests.)

mod support;

use std::time::Duration;

use sessiond_actors::{ProjectHandle, SessionPatch};
use sessiond_store::backend::memory::memory;
use sessiond_store::testing::wait_until;
use sessiond_store::{
    BusEvent, BusSignal, ChangeReason, Channel, RetentionPolicy, Role, RunOutcome, SessionStatus,
    codec,
};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn wait_status(
    s: &sessiond_actors::SessionHandle,
    status: SessionStatus,
) -> sessiond_store::SessionMeta {
    wait_until("status", WAIT, || async {
        let m = s.meta().await.ok()?;
        (m.status == status).then_some(m)
    })
    .await
}

#[tokio::test]
async fn steer_ends_the_active_run_and_its_prompt_runs_before_the_queue() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"hang": true})).await;
    let (_p, s) = activate(&b, &meta).await;
    let first = s.send("one".into(), None).await.unwrap();
    let queued = s.send("two".into(), None).await.unwrap();
    wait_status(&s, SessionStatus::Running).await;
    let steer = s.steer("now".into(), None).await.unwrap();
    assert_eq!(steer.interrupted_run_id, Some(first.run_id));
    assert!(steer.message_seq > queued.message_seq);
    // The steered prompt runs next, ahead of "two".
    let m = wait_until("steered run", WAIT, || async {
        let m = s.meta().await.unwrap();
        (m.last_run.as_ref().map(|r| r.run_id) == Some(steer.run_id)).then_some(m)
    })
    .await;
    assert_eq!(m.status, SessionStatus::Running);
    // With nothing running, a steer is a send that goes first.
    s.abort(None).await.unwrap();
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 100)
        .await
        .unwrap();
    let prompts: Vec<_> = log
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(prompts, vec!["one", "two", "now"]);
}

#[tokio::test]
async fn a_paused_session_queues_prompts_until_resumed() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let (_p, s) = activate(&b, &meta).await;
    let m = s.set_paused(true).await.unwrap();
    assert!(m.paused);
    assert_eq!(stored(&b, &meta).await.status, SessionStatus::Paused);
    let r = s.send("later".into(), None).await.unwrap();
    assert!(r.queued);
    // Nothing runs while paused: the session stays paused with only the prompt.
    let m = s.meta().await.unwrap();
    assert_eq!(
        (m.status, m.last_seq, m.last_run.is_none()),
        (SessionStatus::Paused, 1, true)
    );
    s.set_paused(false).await.unwrap();
    let done = wait_idle_with(&b, &meta, 2).await;
    assert_eq!(done.last_run.unwrap().run_id, r.run_id);
}

#[tokio::test]
async fn patch_changes_what_the_next_run_uses() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let (_p, s) = activate(&b, &meta).await;
    let patched = s
        .patch(SessionPatch {
            label: Some("renamed".into()),
            model: Some("m2".into()),
            driver_options: Some(
                serde_json::json!({"reply": "patched"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
            thinking: Some(true),
            ..SessionPatch::default()
        })
        .await
        .unwrap();
    assert_eq!(patched.label.as_deref(), Some("renamed"));
    let st = stored(&b, &meta).await;
    assert_eq!(
        (st.model.as_deref(), st.config.thinking),
        (Some("m2"), Some(true))
    );
    s.send("hi".into(), None).await.unwrap();
    wait_idle_with(&b, &meta, 2).await;
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(log[1].content, "patched");
}

#[tokio::test]
async fn reset_archives_the_transcript_and_keeps_seq_going() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"input_tokens": 5})).await;
    let (_p, s) = activate(&b, &meta).await;
    s.send("one".into(), None).await.unwrap();
    wait_idle_with(&b, &meta, 2).await;
    let m = s.reset().await.unwrap();
    assert_eq!((m.archived_upto, m.usage.input_tokens), (2, 0));
    assert!(m.last_run.is_none());
    let live = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert!(live.is_empty(), "fresh transcript");
    let arch = b
        .sessions
        .read_archive(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(arch.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    let r = s.send("two".into(), None).await.unwrap();
    assert_eq!(r.message_seq, 3, "seq continues after a reset");
    wait_idle_with(&b, &meta, 4).await;
}

#[tokio::test]
async fn compact_keeps_the_tail_archives_the_rest_and_resets_tokens() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"input_tokens": 7})).await;
    let (_p, s) = activate(&b, &meta).await;
    for i in 0..3 {
        s.send(format!("p{i}"), None).await.unwrap();
    }
    wait_idle_with(&b, &meta, 6).await;
    let report = s.compact(2).await.unwrap();
    assert_eq!(
        (report.compacted, report.kept, report.archived),
        (true, 2, 4)
    );
    let live = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(live.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![5, 6]);
    let arch = b
        .sessions
        .read_archive(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        arch.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let st = stored(&b, &meta).await;
    assert_eq!((st.usage.input_tokens, st.archived_upto), (0, 4));
    // Nothing more to archive: a second compaction with the same bound is a no-op.
    let again = s.compact(2).await.unwrap();
    assert_eq!((again.compacted, again.kept, again.archived), (false, 2, 0));
}

#[tokio::test]
async fn compact_never_archives_a_prompt_that_has_not_run() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"hang": true})).await;
    let (_p, s) = activate(&b, &meta).await;
    let running = s.send("running".into(), None).await.unwrap();
    s.send("queued".into(), None).await.unwrap();
    wait_status(&s, SessionStatus::Running).await;
    let report = s.compact(0).await.unwrap();
    assert!(
        !report.compacted,
        "the active run's prompt is the first message"
    );
    assert_eq!(report.kept, 2);
    s.abort(Some(running.run_id)).await.unwrap();
    let live = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert!(live.iter().any(|m| m.content == "queued"));
}

#[tokio::test]
async fn context_past_the_threshold_compacts_automatically() {
    let b = memory();
    let mut meta = create(&b, serde_json::json!({"context_tokens": 900})).await;
    meta.config.auto_compact_tokens = Some(500);
    meta.config.auto_compact_keep = Some(1);
    let (_p, s) = activate(&b, &meta).await;
    s.patch(SessionPatch {
        auto_compact_tokens: Some(500),
        auto_compact_keep: Some(1),
        ..SessionPatch::default()
    })
    .await
    .unwrap();
    s.send("one".into(), None).await.unwrap();
    let m = wait_until("auto-compacted", WAIT, || async {
        let m = stored(&b, &meta).await;
        (m.archived_upto == 1 && m.status == SessionStatus::Idle).then_some(m)
    })
    .await;
    assert_eq!(m.usage.context_tokens, 0);
}

#[tokio::test]
async fn delete_removes_the_session_and_keeps_an_archive_when_asked() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"hang": true})).await;
    let (_p, s) = activate(&b, &meta).await;
    s.send("doomed".into(), None).await.unwrap();
    wait_status(&s, SessionStatus::Running).await;
    s.delete(true, ChangeReason::Delete).await.unwrap();
    assert!(
        b.sessions
            .load_session(&meta.tenant, meta.id)
            .await
            .unwrap()
            .is_none()
    );
    let listed = b
        .sessions
        .list_sessions(&meta.tenant, &meta.project)
        .await
        .unwrap();
    assert!(listed.iter().all(|(id, _)| *id != meta.id));
    let arch = b
        .sessions
        .read_archive(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(arch[0].content, "doomed");
    wait_until("actor stopped", WAIT, || async {
        (!s.is_alive()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_answer_even_after_a_restart() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let (project, s) = activate(&b, &meta).await;
    let first = s.send("once".into(), Some("k-1".into())).await.unwrap();
    let again = s.send("once".into(), Some("k-1".into())).await.unwrap();
    assert_eq!(first, again);
    wait_idle_with(&b, &meta, 2).await;
    project.stop_and_wait().await;
    // A new incarnation knows the key from the store alone.
    let (_p2, s2) = activate(&b, &stored(&b, &meta).await).await;
    assert_eq!(
        s2.send("once".into(), Some("k-1".into())).await.unwrap(),
        first
    );
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        log.iter().filter(|m| m.role == Role::User).count(),
        1,
        "ran once"
    );
    let other = s2.send("twice".into(), Some("k-2".into())).await.unwrap();
    assert_eq!(other.message_seq, 3);
}

#[tokio::test]
async fn a_crashed_actor_restarts_from_the_store_and_too_many_crashes_mark_error() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"crash_actor": true})).await;
    let project = ProjectHandle::spawn(context(&b), meta.tenant.clone(), meta.project.clone())
        .await
        .unwrap();
    let mut last_seq = 0;
    for crash in 1..=4u64 {
        let s = project.activate(stored(&b, &meta).await).await.unwrap();
        let r = s.send(format!("p{crash}"), None).await.unwrap();
        assert_eq!(r.message_seq, last_seq + 1, "seq continues with no gap");
        // The crashed run is closed as interrupted (by the restarted actor).
        let m = wait_until("run interrupted", WAIT, || async {
            let m = stored(&b, &meta).await;
            (m.last_run.as_ref().is_some_and(|l| {
                l.run_id == r.run_id && l.outcome == Some(RunOutcome::Interrupted)
            }))
            .then_some(m)
        })
        .await;
        last_seq = m.last_seq;
        if crash == 4 {
            let m = wait_until("marked error", WAIT, || async {
                let m = stored(&b, &meta).await;
                (m.status == SessionStatus::Error).then_some(m)
            })
            .await;
            assert!(m.error.unwrap().contains("crashed more than 3 times"));
        }
    }
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 100)
        .await
        .unwrap();
    let seqs: Vec<u64> = log.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "dense, no duplicate"
    );
}

#[tokio::test]
async fn an_idle_session_is_passivated_and_comes_back_on_the_next_request() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let ctx = context_with(&b, |s| s.idle_after = Duration::from_millis(200));
    let (project, s) = activate_in(ctx, &meta).await;
    s.send("hi".into(), None).await.unwrap();
    wait_idle_with(&b, &meta, 2).await;
    wait_until("passivated", WAIT, || async {
        (!s.is_alive()).then_some(())
    })
    .await;
    // Its lease is given back and its data kept.
    assert_eq!(b.leases.owner(&meta.tenant, meta.id).await.unwrap(), None);
    let s = project.activate(stored(&b, &meta).await).await.unwrap();
    assert_eq!(s.send("again".into(), None).await.unwrap().message_seq, 3);
}

#[tokio::test]
async fn a_paused_session_with_queued_prompts_passivates_and_runs_them_after_the_resume() {
    let b = memory();
    let meta = create(&b, serde_json::json!({})).await;
    let ctx = context_with(&b, |s| s.idle_after = Duration::from_millis(200));
    let (project, s) = activate_in(ctx, &meta).await;
    s.set_paused(true).await.unwrap();
    let queued = s.send("later".into(), None).await.unwrap();
    // Nothing runs while paused, so nothing holds the actor: it passivates.
    wait_until("passivated", WAIT, || async {
        (!s.is_alive()).then_some(())
    })
    .await;
    let kept = stored(&b, &meta).await;
    assert!(kept.paused);
    assert_eq!(
        kept.queued,
        vec![queued.message_seq],
        "the prompt stays queued"
    );
    // The resume brings it back; the queued prompt runs.
    let s = project.activate(kept).await.unwrap();
    s.set_paused(false).await.unwrap();
    let done = wait_idle_with(&b, &meta, queued.message_seq + 1).await;
    assert_eq!(
        done.last_run.map(|r| (r.prompt_seq, r.outcome)),
        Some((queued.message_seq, Some(RunOutcome::Completed)))
    );
}

#[tokio::test]
async fn a_quiet_run_is_reported_stalled_and_aborted_past_the_limit() {
    let b = memory();
    let meta = create(&b, serde_json::json!({"hang": true})).await;
    let mut sub = b
        .bus
        .subscribe(&Channel::session(&meta.tenant, meta.id))
        .await
        .unwrap();
    let ctx = context_with(&b, |s| {
        s.stall_after = Duration::from_millis(200);
        s.stall_abort_after = Some(Duration::from_millis(600));
    });
    let (_project, s) = activate_in(ctx, &meta).await;
    let r = s.send("quiet".into(), None).await.unwrap();
    let stalled = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(BusSignal::Payload(bytes)) = sub.recv().await
                && let Ok(BusEvent::Stalled { run_id, idle_ms }) = codec::decode(&bytes)
            {
                return (run_id, idle_ms);
            }
        }
    })
    .await
    .expect("a stalled event");
    assert_eq!(stalled.0, r.run_id);
    assert!(stalled.1 >= 200);
    let m = wait_until("aborted", WAIT, || async {
        let m = stored(&b, &meta).await;
        (m.last_run.as_ref().and_then(|l| l.outcome) == Some(RunOutcome::Aborted)).then_some(m)
    })
    .await;
    let log = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert!(
        log.last().unwrap().content.contains("no driver activity"),
        "{log:?}"
    );
    assert_eq!(m.status, SessionStatus::Idle);
}

#[tokio::test]
async fn retention_keeps_the_newest_finished_sessions_and_never_a_running_one() {
    let b = memory();
    let busy = create(&b, serde_json::json!({"hang": true})).await;
    let (tenant, project_id) = (busy.tenant.clone(), busy.project.clone());
    let mut finished = Vec::new();
    for _ in 0..4 {
        let mut m =
            sessiond_store::testing::conformance::new_meta(&tenant, project_id.as_str(), None);
        m.last_activity_ms -= 1000 * (10 - finished.len() as i64);
        b.sessions.create_session(&m).await.unwrap();
        finished.push(m);
    }
    b.sessions
        .set_retention(
            &tenant,
            &project_id,
            &RetentionPolicy {
                max_sessions: 2,
                max_age_days: 30,
            },
        )
        .await
        .unwrap();
    let project = ProjectHandle::spawn(context(&b), tenant.clone(), project_id.clone())
        .await
        .unwrap();
    let s = project.activate(busy.clone()).await.unwrap();
    s.send("keep running".into(), None).await.unwrap();
    wait_status(&s, SessionStatus::Running).await;
    let mut deleted = project.sweep().await.unwrap();
    deleted.sort();
    let mut expected = vec![finished[0].id, finished[1].id];
    expected.sort();
    assert_eq!(deleted, expected, "the two oldest finished sessions go");
    let left: Vec<_> = b
        .sessions
        .list_sessions(&tenant, &project_id)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(left.contains(&busy.id), "the running session stays");
    assert_eq!(left.len(), 3);
}

#[tokio::test]
async fn a_session_wakes_a_drain_when_it_settles_and_only_then() {
    use futures::FutureExt;
    let b = memory();
    let meta = create(&b, serde_json::json!({"chunks": 3, "delay_ms": 20})).await;
    let ctx = context(&b);
    let settled = ctx.settled.clone();
    let (_project, s) = activate_in(ctx, &meta).await;
    s.meta().await.unwrap();

    // A run: the drain is woken when it ends, not before.
    let woken = settled.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    s.send("one".into(), None).await.unwrap();
    tokio::time::timeout(WAIT, &mut woken)
        .await
        .expect("woken when the run ended");
    assert!(s.is_settled().await.unwrap());

    // Asking a settled session does not wake anyone (a drain asks every session).
    let asked = settled.notified();
    tokio::pin!(asked);
    asked.as_mut().enable();
    assert!(s.is_settled().await.unwrap());
    s.meta().await.unwrap();
    assert!(
        asked.as_mut().now_or_never().is_none(),
        "woken by a question"
    );

    // Paused with a prompt queued: settled (nothing starts before the resume),
    // though not idle (retention keeps it).
    s.set_paused(true).await.unwrap();
    s.send("after resume".into(), None).await.unwrap();
    assert!(s.is_settled().await.unwrap());
    assert!(!s.is_idle().await.unwrap());
}
