//! Property test: random sequences of send, steer, abort, pause, resume, compact and
//! reset against a simple model of a session. After every step, and once everything
//! has settled:
//! - seqs are dense and increasing: the archive and the live log together hold
//!   exactly 1..=last_seq, each once;
//! - every acknowledged user message is there with its text (live, or archived by
//!   compact or reset);
//! - at most one run is active: each run's output is one contiguous block, and a
//!   `running` status always has an open run;
//! - the status agrees with the model (paused when paused, idle once settled).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use sessiond_actors::{ProjectHandle, SessionHandle};
use sessiond_store::backend::memory::memory;
use sessiond_store::testing::wait_until;
use sessiond_store::{Backend, Message, Role, RunId, SessionMeta, SessionStatus};
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Send,
    Steer,
    Abort,
    Pause,
    Resume,
    Compact(u64),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Send),
        2 => Just(Op::Steer),
        2 => Just(Op::Abort),
        1 => Just(Op::Pause),
        2 => Just(Op::Resume),
        1 => (0u64..6).prop_map(Op::Compact),
        1 => Just(Op::Reset),
    ]
}

/// What the model expects.
#[derive(Debug, Default)]
struct Model {
    /// Acknowledged prompts: seq -> text.
    acked: BTreeMap<u64, String>,
    paused: bool,
}

/// Every message up to the stored `last_seq`, from the archive and the live log.
/// Runs go on while this reads, so it reads the meta first (what must be there),
/// then the log, then the archive: a message archived between the two reads shows in
/// both (the same message), never in neither.
async fn snapshot(b: &Backend, meta: &SessionMeta) -> (SessionMeta, BTreeMap<u64, Message>) {
    let stored = stored(b, meta).await;
    let live = b
        .sessions
        .read_log(&meta.tenant, meta.id, 0, 10_000)
        .await
        .unwrap();
    let arch = b
        .sessions
        .read_archive(&meta.tenant, meta.id, 0, 10_000)
        .await
        .unwrap();
    let mut all = BTreeMap::new();
    for m in arch.into_iter().chain(live) {
        if m.seq > stored.last_seq {
            continue;
        }
        if let Some(other) = all.insert(m.seq, m.clone()) {
            assert_eq!(other.id, m.id, "seq {} names two messages", m.seq);
        }
    }
    (stored, all)
}

async fn check(b: &Backend, meta: &SessionMeta, s: &SessionHandle, model: &Model) {
    let m = s.meta().await.unwrap();
    let (stored, all) = snapshot(b, meta).await;
    let seqs: Vec<u64> = all.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=stored.last_seq).collect::<Vec<_>>(),
        "archive + live log hold exactly 1..=last_seq"
    );
    for (seq, text) in &model.acked {
        if *seq > stored.last_seq {
            continue; // acknowledged after the snapshot's meta was read
        }
        let found = &all[seq];
        assert_eq!((found.role, &found.content), (Role::User, text));
    }
    // One run at a time: the output (non-user messages) of runs never interleaves.
    let mut seen: Vec<RunId> = Vec::new();
    for msg in all.values().filter(|m| m.role != Role::User) {
        let Some(run) = msg.run_id else { continue };
        if seen.last() != Some(&run) {
            assert!(!seen.contains(&run), "run {run} output interleaved");
            seen.push(run);
        }
    }
    if m.status == SessionStatus::Running {
        assert!(m.last_run.as_ref().is_some_and(|r| r.outcome.is_none()));
    }
    assert_eq!(m.paused, model.paused);
    if model.paused && m.status != SessionStatus::Running {
        assert_eq!(m.status, SessionStatus::Paused);
    }
}

async fn run_case(ops: Vec<Op>) {
    let b = memory();
    let meta = create(&b, serde_json::json!({"delay_ms": 2, "chunks": 2})).await;
    let project = ProjectHandle::spawn(context(&b), meta.tenant.clone(), meta.project.clone())
        .await
        .unwrap();
    let s = project.activate(meta.clone()).await.unwrap();
    let mut model = Model::default();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Send => {
                let text = format!("send {i}");
                let r = s.send(text.clone(), None).await.unwrap();
                model.acked.insert(r.message_seq, text);
            }
            Op::Steer => {
                let text = format!("steer {i}");
                let r = s.steer(text.clone(), None).await.unwrap();
                model.acked.insert(r.message_seq, text);
            }
            Op::Abort => {
                s.abort(None).await.unwrap();
            }
            Op::Pause => {
                s.set_paused(true).await.unwrap();
                model.paused = true;
            }
            Op::Resume => {
                s.set_paused(false).await.unwrap();
                model.paused = false;
            }
            Op::Compact(keep) => {
                // A run may add messages between these two calls: the log only grows.
                let before = s.meta().await.unwrap();
                let live = before.last_seq - before.archived_upto;
                let r = s.compact(keep).await.unwrap();
                // The tail asked for stays (more when unrun prompts must stay), and
                // nothing live before is unaccounted for.
                assert!(
                    r.kept >= keep.min(live),
                    "kept {} of {live}, asked {keep}",
                    r.kept
                );
                assert!(r.kept + r.archived >= live);
                assert_eq!(r.compacted, r.archived > 0);
            }
            Op::Reset => {
                s.reset().await.unwrap();
            }
        }
        check(&b, &meta, &s, &model).await;
    }
    // Settle: resume, and every queued prompt runs; the session ends idle with
    // every acknowledged prompt in the snapshot.
    s.set_paused(false).await.unwrap();
    model.paused = false;
    wait_until("settled", Duration::from_secs(20), || async {
        let m = s.meta().await.ok()?;
        let st = stored(&b, &meta).await;
        (m.status == SessionStatus::Idle
            && st.status == SessionStatus::Idle
            && st.last_seq == m.last_seq)
            .then_some(())
    })
    .await;
    check(&b, &meta, &s, &model).await;
    let (stored, _) = snapshot(&b, &meta).await;
    assert!(model.acked.keys().all(|seq| *seq <= stored.last_seq));
    project.stop_and_wait().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn a_session_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..14)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run_case(ops));
    }
}
