//! The conformance suites of a session's life beyond its log: archive moves on
//! commit, archive expiry, idempotency keys, delete, retention policies and the
//! project list. Same rules as the parent module: fresh ids per call, any backend.
//!
//! # Layout
//! - this file: the helpers, idempotency keys, retention policies, the project list
//! - `archive`: archive moves on commit, archive expiry
//! - `delete`: deleting a session

use std::time::Duration;

use super::{fresh_tenant, lease, msg, new_meta, write};
use crate::backend::Backend;
use crate::ids::*;
use crate::records::*;
use crate::session_store::{
    ArchiveUpTo, CommitOutcome, CreateOutcome, DeleteOutcome, IdempotencyRecord, IdempotencyScope,
    SessionWrite,
};
use crate::testing::wait_until;

mod archive;
mod delete;

pub use archive::{archive_expiry_suite, archive_on_commit_suite};
pub use delete::delete_suite;

/// Long enough never to lapse during a test.
const LONG_MS: u64 = 600_000;
/// How long a test waits for something with a 1 ms TTL to expire.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(10);

/// Every suite of this module, in order.
pub async fn session_lifecycle_suite(b: &Backend) {
    archive_on_commit_suite(b).await;
    archive_expiry_suite(b).await;
    idempotency_suite(b).await;
    delete_suite(b).await;
    retention_and_projects_suite(b).await;
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

fn texts(from: u64, to: u64) -> Vec<Message> {
    (from..=to)
        .map(|s| msg(s, Role::Assistant, &format!("m{s}")))
        .collect()
}

fn archiving(w: SessionWrite, upto_seq: u64, ttl_ms: u64) -> SessionWrite {
    SessionWrite {
        archive: Some(ArchiveUpTo { upto_seq, ttl_ms }),
        ..w
    }
}

fn recording(w: SessionWrite, key: &str, answer: &str, ttl_ms: u64) -> SessionWrite {
    SessionWrite {
        idempotency: Some(record(key, answer, ttl_ms)),
        ..w
    }
}

fn record(key: &str, answer: &str, ttl_ms: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.into(),
        answer: answer.into(),
        ttl_ms,
    }
}

/// A created session with a lease: its meta and fence.
async fn leased(
    b: &Backend,
    tenant: &TenantId,
    project: &str,
    key: Option<&str>,
) -> (SessionMeta, u64) {
    let meta = new_meta(tenant, project, key);
    assert_eq!(
        b.sessions.create_session(&meta).await.unwrap(),
        CreateOutcome::Created
    );
    let fence = lease(b, &meta, &NodeId::new("n1").unwrap()).await;
    (meta, fence)
}

/// A whole log (live or archived), read in pages of 2 so paging is covered too.
async fn read_all(b: &Backend, meta: &SessionMeta, archive: bool) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let after = out.last().map_or(0, |m| m.seq);
        let page = if archive {
            b.sessions
                .read_archive(&meta.tenant, meta.id, after, 2)
                .await
        } else {
            b.sessions.read_log(&meta.tenant, meta.id, after, 2).await
        }
        .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}
/// Idempotency keys: recorded with a commit only when it commits, first answer wins,
/// `claim_idempotency` is set-if-absent in both scopes, keys expire.
pub async fn idempotency_suite(b: &Backend) {
    let t = fresh_tenant();
    let s = &b.sessions;
    let (meta, fence) = leased(b, &t, "proj", None).await;
    let scope = IdempotencyScope::Session(meta.id);
    let answer = |key: &'static str| {
        let scope = scope.clone();
        let t = t.clone();
        async move { s.idempotent_answer(&t, &scope, key).await.unwrap() }
    };
    assert_eq!(answer("req-1").await, None);

    let w = recording(write(&meta, fence, texts(1, 1)), "req-1", "a1", LONG_MS);
    assert_eq!(
        s.commit(&[w]).await.unwrap(),
        vec![CommitOutcome::Committed { last_seq: 1 }]
    );
    assert_eq!(answer("req-1").await.as_deref(), Some("a1"));
    // A second commit with the same key: the write stands, the first answer too.
    let w = recording(write(&meta, fence, texts(2, 2)), "req-1", "a2", LONG_MS);
    assert_eq!(
        s.commit(&[w]).await.unwrap(),
        vec![CommitOutcome::Committed { last_seq: 2 }]
    );
    assert_eq!(answer("req-1").await.as_deref(), Some("a1"));

    // Refused writes record nothing.
    let gapped = recording(write(&meta, fence, texts(9, 9)), "req-gap", "x", LONG_MS);
    assert_eq!(
        s.commit(&[gapped]).await.unwrap(),
        vec![CommitOutcome::Gap { last_seq: 2 }]
    );
    let stale = recording(write(&meta, fence + 1, vec![]), "req-fenced", "x", LONG_MS);
    assert_eq!(
        s.commit(&[stale]).await.unwrap(),
        vec![CommitOutcome::Fenced]
    );
    let missing = new_meta(&t, "proj", None);
    let w = recording(write(&missing, 0, vec![]), "req-missing", "x", LONG_MS);
    assert_eq!(s.commit(&[w]).await.unwrap(), vec![CommitOutcome::Missing]);
    assert_eq!(answer("req-gap").await, None);
    assert_eq!(answer("req-fenced").await, None);
    let missing_scope = IdempotencyScope::Session(missing.id);
    assert_eq!(
        s.idempotent_answer(&t, &missing_scope, "req-missing")
            .await
            .unwrap(),
        None
    );

    // claim_idempotency in the session scope shares the keys commits record.
    assert_eq!(
        s.claim_idempotency(&t, &scope, &record("req-1", "late", LONG_MS))
            .await
            .unwrap()
            .as_deref(),
        Some("a1")
    );
    assert_eq!(
        s.claim_idempotency(&t, &scope, &record("req-5", "five", LONG_MS))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.claim_idempotency(&t, &scope, &record("req-5", "other", LONG_MS))
            .await
            .unwrap()
            .as_deref(),
        Some("five")
    );
    assert_eq!(answer("req-5").await.as_deref(), Some("five"));

    // The project scope is its own namespace, per project and per tenant.
    let project = IdempotencyScope::Project(meta.project.clone());
    let create = record("req-5", "created", LONG_MS);
    assert_eq!(
        s.claim_idempotency(&t, &project, &create).await.unwrap(),
        None
    );
    assert_eq!(
        s.claim_idempotency(&t, &project, &record("req-5", "again", LONG_MS))
            .await
            .unwrap()
            .as_deref(),
        Some("created")
    );
    assert_eq!(
        s.idempotent_answer(&t, &project, "req-5")
            .await
            .unwrap()
            .as_deref(),
        Some("created")
    );
    let elsewhere = IdempotencyScope::Project(ProjectId::new("elsewhere").unwrap());
    assert_eq!(
        s.idempotent_answer(&t, &elsewhere, "req-5").await.unwrap(),
        None
    );
    let t2 = fresh_tenant();
    assert_eq!(
        s.idempotent_answer(&t2, &project, "req-5").await.unwrap(),
        None
    );
    assert_eq!(
        s.idempotent_answer(&t2, &scope, "req-1").await.unwrap(),
        None
    );
    assert_eq!(
        s.claim_idempotency(&t2, &project, &create).await.unwrap(),
        None
    );

    // Expiry: a forgotten key can be recorded anew, with its new answer.
    for scope in [&scope, &project] {
        let short = record("req-short", "first", 1);
        assert_eq!(s.claim_idempotency(&t, scope, &short).await.unwrap(), None);
        wait_until("the key expires", EXPIRY_DEADLINE, || async {
            s.idempotent_answer(&t, scope, "req-short")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
        let again = record("req-short", "second", LONG_MS);
        assert_eq!(s.claim_idempotency(&t, scope, &again).await.unwrap(), None);
        assert_eq!(
            s.idempotent_answer(&t, scope, "req-short")
                .await
                .unwrap()
                .as_deref(),
            Some("second")
        );
    }
    // The longest TTL means a long time, not "already expired".
    let forever = record("req-forever", "kept", u64::MAX);
    assert_eq!(
        s.claim_idempotency(&t, &project, &forever).await.unwrap(),
        None
    );
    assert_eq!(
        s.idempotent_answer(&t, &project, "req-forever")
            .await
            .unwrap()
            .as_deref(),
        Some("kept")
    );
}
/// Retention policies per project and tenant; the list of every project that ever had
/// a session, deleted sessions included.
pub async fn retention_and_projects_suite(b: &Backend) {
    let t = fresh_tenant();
    let s = &b.sessions;
    let alpha = ProjectId::new("alpha").unwrap();
    let beta = ProjectId::new("beta").unwrap();

    assert_eq!(s.retention(&t, &alpha).await.unwrap(), None);
    let policy = RetentionPolicy {
        max_sessions: 3,
        max_age_days: 7,
    };
    s.set_retention(&t, &alpha, &policy).await.unwrap();
    assert_eq!(s.retention(&t, &alpha).await.unwrap(), Some(policy));
    s.set_retention(&t, &alpha, &RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(
        s.retention(&t, &alpha).await.unwrap(),
        Some(RetentionPolicy::default()),
        "a new policy replaces the old"
    );
    assert_eq!(s.retention(&t, &beta).await.unwrap(), None);
    assert_eq!(s.retention(&fresh_tenant(), &alpha).await.unwrap(), None);

    // A policy alone does not make a project: sessions do.
    assert!(s.list_projects(&t).await.unwrap().is_empty());
    let (in_beta, fence) = leased(b, &t, "beta", None).await;
    s.create_session(&new_meta(&t, "alpha", Some("k")))
        .await
        .unwrap();
    let taken = new_meta(&t, "alpha", Some("k"));
    assert!(matches!(
        s.create_session(&taken).await.unwrap(),
        CreateOutcome::KeyTaken(_)
    ));
    assert_eq!(
        s.list_projects(&t).await.unwrap(),
        [alpha.clone(), beta.clone()]
    );
    assert_eq!(
        s.delete_session(&t, in_beta.id, fence, None).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(s.list_sessions(&t, &beta).await.unwrap().is_empty());
    assert_eq!(
        s.list_projects(&t).await.unwrap(),
        [alpha, beta],
        "a project stays listed when its last session is deleted"
    );
    assert!(s.list_projects(&fresh_tenant()).await.unwrap().is_empty());
}
