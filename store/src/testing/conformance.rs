//! The conformance suites: what every backend of each store trait must do. Each
//! backend's test file calls these with a fresh backend; ids are fresh per call, so a
//! shared server is fine.
//!
//! # Layout
//! - this file: sessions (create, keys, log, fencing, group commit), leases
//! - `bus`: publish/subscribe and the announcements of commits
//! - `lifecycle`: archive moves and expiry, idempotency keys, delete, retention
//!   policies, the project list
//! - `nodes`: the node registry (heartbeats, held sessions) and the node inbox

use std::time::Duration;

use crate::backend::Backend;
use crate::ids::*;
use crate::lease_store::{LeaseGrant, LeaseRef};
use crate::records::*;
use crate::session_store::{CommitOutcome, CreateOutcome, SessionWrite};

mod bus;
mod lifecycle;
mod nodes;

pub use bus::event_bus_suite;
pub use lifecycle::{
    archive_expiry_suite, archive_on_commit_suite, delete_suite, idempotency_suite,
    retention_and_projects_suite, session_lifecycle_suite,
};
pub use nodes::node_registry_suite;

/// A tenant no other test uses.
pub fn fresh_tenant() -> TenantId {
    TenantId::new(format!("t{}", uuid::Uuid::now_v7().simple())).expect("valid tenant")
}

/// A minimal new session of `project`.
pub fn new_meta(tenant: &TenantId, project: &str, key: Option<&str>) -> SessionMeta {
    let now = now_ms();
    SessionMeta {
        id: SessionId::generate(),
        tenant: tenant.clone(),
        project: ProjectId::new(project).expect("valid project"),
        key: key.map(|k| SessionKey::new(k).expect("valid key")),
        parent_id: None,
        label: None,
        driver: "scripted".into(),
        driver_options: Default::default(),
        model: None,
        system_prompt: None,
        status: SessionStatus::Idle,
        last_run: None,
        usage: Usage::default(),
        error: None,
        config: SessionConfig::default(),
        driver_state: Default::default(),
        last_seq: 0,
        archived_upto: 0,
        paused: false,
        queued: Vec::new(),
        queue_tracked: true,
        protected: false,
        created_at_ms: now,
        updated_at_ms: now,
        last_activity_ms: now,
    }
}

/// A message with `seq` and `content`.
pub fn msg(seq: u64, role: Role, content: &str) -> Message {
    Message {
        seq,
        id: MessageId::generate(),
        run_id: None,
        role,
        content: content.into(),
        tool: None,
        timestamp_ms: now_ms(),
    }
}

fn write(meta: &SessionMeta, fence: u64, messages: Vec<Message>) -> SessionWrite {
    SessionWrite {
        tenant: meta.tenant.clone(),
        session: meta.id,
        fence,
        messages,
        meta: None,
        archive: None,
        idempotency: None,
    }
}

async fn lease(b: &Backend, meta: &SessionMeta, node: &NodeId) -> u64 {
    match b
        .leases
        .acquire(&meta.tenant, meta.id, node, Duration::from_secs(10))
        .await
        .expect("acquire")
    {
        LeaseGrant::Granted { fence } => fence,
        LeaseGrant::Held { owner } => panic!("lease held by {owner}"),
    }
}

/// `SessionStore`: create, keys, load, log append rules, fencing, group commit, list.
pub async fn session_store_suite(b: &Backend) {
    let t = fresh_tenant();
    let node = NodeId::new("n1").unwrap();
    let s = &b.sessions;

    // Create, load, key uniqueness.
    let meta = new_meta(&t, "proj", Some("main"));
    assert_eq!(
        s.create_session(&meta).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(s.load_session(&t, meta.id).await.unwrap().unwrap(), meta);
    let dup = new_meta(&t, "proj", Some("main"));
    assert_eq!(
        s.create_session(&dup).await.unwrap(),
        CreateOutcome::KeyTaken(meta.id)
    );
    assert!(s.load_session(&t, dup.id).await.unwrap().is_none());
    let key = SessionKey::new("main").unwrap();
    assert_eq!(
        s.resolve_key(&t, &meta.project, &key).await.unwrap(),
        Some(meta.id)
    );
    // A retried create (same id) is harmless: the session stays as stored.
    let mut retried = meta.clone();
    retried.label = Some("changed by the retry".into());
    assert_eq!(
        s.create_session(&retried).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(s.load_session(&t, meta.id).await.unwrap().unwrap(), meta);
    assert_eq!(
        s.resolve_key(&t, &meta.project, &key).await.unwrap(),
        Some(meta.id)
    );
    let other_project = ProjectId::new("other").unwrap();
    assert_eq!(s.resolve_key(&t, &other_project, &key).await.unwrap(), None);
    // Another tenant sees nothing of this one.
    let t2 = fresh_tenant();
    assert!(s.load_session(&t2, meta.id).await.unwrap().is_none());
    assert_eq!(s.resolve_key(&t2, &meta.project, &key).await.unwrap(), None);

    // Appends: dense seq, DUP skipped, gaps refused, all or nothing.
    let fence = lease(b, &meta, &node).await;
    let out = s
        .commit(&[write(
            &meta,
            fence,
            vec![
                msg(1, Role::User, "hi"),
                msg(2, Role::Assistant, "echo: hi"),
            ],
        )])
        .await
        .unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 2 }]);
    // A retry of the same batch (ambiguous failure) is harmless.
    let retry = s
        .commit(&[write(
            &meta,
            fence,
            vec![
                msg(1, Role::User, "hi"),
                msg(2, Role::Assistant, "echo: hi"),
            ],
        )])
        .await
        .unwrap();
    assert_eq!(retry, vec![CommitOutcome::Committed { last_seq: 2 }]);
    // Overlap: 2 is skipped, 3 is new.
    let out = s
        .commit(&[write(
            &meta,
            fence,
            vec![msg(2, Role::Assistant, "x"), msg(3, Role::User, "more")],
        )])
        .await
        .unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 3 }]);
    let gap = s
        .commit(&[write(&meta, fence, vec![msg(5, Role::User, "gap")])])
        .await
        .unwrap();
    assert_eq!(gap, vec![CommitOutcome::Gap { last_seq: 3 }]);
    let log = s.read_log(&t, meta.id, 0, 100).await.unwrap();
    assert_eq!(log.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(log[1].content, "echo: hi", "a duplicate never overwrites");
    assert_eq!(log[0].role, Role::User);
    // Paging.
    let page = s.read_log(&t, meta.id, 1, 1).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2]);
    assert!(s.read_log(&t, meta.id, 3, 10).await.unwrap().is_empty());
    assert!(
        s.read_log(&t, SessionId::generate(), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Meta: last_seq is the store's, written after the messages.
    let mut m2 = meta.clone();
    m2.status = SessionStatus::Running;
    m2.label = Some("busy".into());
    m2.last_seq = 999;
    m2.last_activity_ms = meta.last_activity_ms + 10;
    let mut w = write(&meta, fence, vec![msg(4, Role::Assistant, "four")]);
    w.meta = Some(m2.clone());
    assert_eq!(
        s.commit(&[w]).await.unwrap(),
        vec![CommitOutcome::Committed { last_seq: 4 }]
    );
    let loaded = s.load_session(&t, meta.id).await.unwrap().unwrap();
    assert_eq!(loaded.status, SessionStatus::Running);
    assert_eq!(loaded.label.as_deref(), Some("busy"));
    assert_eq!(loaded.last_seq, 4);

    // Fencing: a newer lease fences the old writer; nothing it sends is written.
    let newer = lease(b, &meta, &node).await;
    assert!(newer > fence);
    let mut stale = write(&meta, fence, vec![msg(5, Role::Assistant, "stale")]);
    stale.meta = Some(meta.clone());
    assert_eq!(
        s.commit(&[stale]).await.unwrap(),
        vec![CommitOutcome::Fenced]
    );
    let loaded = s.load_session(&t, meta.id).await.unwrap().unwrap();
    assert_eq!(
        (loaded.last_seq, loaded.status),
        (4, SessionStatus::Running)
    );

    // Group commit: outcomes per write, in order; one bad write spoils no other.
    let a = new_meta(&t, "proj", None);
    let c = new_meta(&t, "proj", None);
    s.create_session(&a).await.unwrap();
    s.create_session(&c).await.unwrap();
    let fa = lease(b, &a, &node).await;
    let fc = lease(b, &c, &node).await;
    let missing = new_meta(&t, "proj", None);
    let out = s
        .commit(&[
            write(&a, fa, vec![msg(1, Role::User, "a1")]),
            write(&c, fc + 100, vec![msg(1, Role::User, "c1")]),
            write(&a, fa, vec![msg(2, Role::Assistant, "a2")]),
            write(&missing, 1, vec![msg(1, Role::User, "m")]),
            write(&c, fc, vec![msg(1, Role::User, "c1")]),
        ])
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            CommitOutcome::Committed { last_seq: 1 },
            CommitOutcome::Fenced,
            CommitOutcome::Committed { last_seq: 2 },
            CommitOutcome::Missing,
            CommitOutcome::Committed { last_seq: 1 },
        ]
    );

    // List: newest activity first, per project.
    let mut bump = a.clone();
    bump.last_activity_ms = meta.last_activity_ms + 1_000;
    let mut w = write(&a, fa, vec![]);
    w.meta = Some(bump);
    s.commit(&[w]).await.unwrap();
    let listed = s.list_sessions(&t, &meta.project).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], a.id);
    assert!(ids.contains(&meta.id) && ids.contains(&c.id));
    assert!(
        s.list_sessions(&t, &other_project)
            .await
            .unwrap()
            .is_empty()
    );

    // Records survive the trip whole, tool details and JSON input included.
    let mut tool = msg(3, Role::ToolCall, "calling");
    tool.tool = Some(ToolInfo {
        call_id: Some("c1".into()),
        name: Some("grep".into()),
        input: Some(serde_json::json!({"pattern": "x", "n": [1, 2.5, null]})),
        path: None,
        is_error: false,
        full_result: None,
    });
    tool.run_id = Some(RunId::generate());
    s.commit(&[write(&a, fa, vec![tool.clone()])])
        .await
        .unwrap();
    assert_eq!(s.read_log(&t, a.id, 2, 10).await.unwrap(), vec![tool]);
}

/// `LeaseStore`: exclusive grants, growing fences, renew, release, expiry.
pub async fn lease_store_suite(b: &Backend) {
    let t = fresh_tenant();
    let l = &b.leases;
    let n1 = NodeId::new("node-1").unwrap();
    let n2 = NodeId::new("node-2").unwrap();
    let sid = SessionId::generate();
    let ttl = Duration::from_secs(10);

    assert_eq!(l.owner(&t, sid).await.unwrap(), None);
    let LeaseGrant::Granted { fence: f1 } = l.acquire(&t, sid, &n1, ttl).await.unwrap() else {
        panic!("first acquire must be granted");
    };
    assert_eq!(l.owner(&t, sid).await.unwrap(), Some(n1.clone()));
    assert_eq!(
        l.acquire(&t, sid, &n2, ttl).await.unwrap(),
        LeaseGrant::Held { owner: n1.clone() }
    );
    // Re-acquiring one's own lease bumps the fence.
    let LeaseGrant::Granted { fence: f2 } = l.acquire(&t, sid, &n1, ttl).await.unwrap() else {
        panic!("holder may re-acquire");
    };
    assert!(f2 > f1);
    let current = LeaseRef {
        tenant: t.clone(),
        session: sid,
        fence: f2,
    };
    let old = LeaseRef {
        fence: f1,
        ..current.clone()
    };
    assert_eq!(
        l.renew(&n1, &[current.clone(), old.clone()], ttl)
            .await
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        l.renew(&n2, std::slice::from_ref(&current), ttl)
            .await
            .unwrap(),
        vec![false]
    );
    assert!(l.renew(&n1, &[], ttl).await.unwrap().is_empty());

    // Release by a stale fence or another node is a no-op; by the holder it frees.
    l.release(&n1, &old).await.unwrap();
    l.release(&n2, &current).await.unwrap();
    assert_eq!(l.owner(&t, sid).await.unwrap(), Some(n1.clone()));
    l.release(&n1, &current).await.unwrap();
    assert_eq!(l.owner(&t, sid).await.unwrap(), None);
    let LeaseGrant::Granted { fence: f3 } = l.acquire(&t, sid, &n2, ttl).await.unwrap() else {
        panic!("a released lease is free");
    };
    assert!(f3 > f2, "fences never go back");

    // Expiry: a short lease lapses and another node takes it with a larger fence.
    let short = SessionId::generate();
    let LeaseGrant::Granted { fence: s1 } = l
        .acquire(&t, short, &n1, Duration::from_millis(100))
        .await
        .unwrap()
    else {
        panic!("granted");
    };
    let s2 = super::wait_until("lease expiry", Duration::from_secs(5), || async {
        match l.acquire(&t, short, &n2, ttl).await.unwrap() {
            LeaseGrant::Granted { fence } => Some(fence),
            LeaseGrant::Held { .. } => None,
        }
    })
    .await;
    assert!(s2 > s1);
    let lapsed = LeaseRef {
        tenant: t.clone(),
        session: short,
        fence: s1,
    };
    assert_eq!(l.renew(&n1, &[lapsed], ttl).await.unwrap(), vec![false]);
}
