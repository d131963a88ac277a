//! Helpers shared by the actor tests: a context over a backend, sessions, waits.
#![allow(dead_code)]

use std::time::Duration;

use sessiond_actors::{
    DriverRegistry, LeaseBook, ProjectHandle, SessionContext, SessionHandle, SessionSettings,
    Writer, WriterConfig,
};
use sessiond_store::testing::conformance::{fresh_tenant, new_meta};
use sessiond_store::testing::wait_until;
use sessiond_store::{Backend, NodeId, SessionMeta, SessionStatus};

/// A context over `b` with test timing.
pub(crate) fn context(b: &Backend) -> SessionContext {
    context_with(b, |_| {})
}

/// A context over `b` with test timing, adjusted by `tune`.
pub(crate) fn context_with(b: &Backend, tune: impl FnOnce(&mut SessionSettings)) -> SessionContext {
    let mut settings = SessionSettings {
        abort_grace: Duration::from_millis(500),
        test_hooks: true,
        ..SessionSettings::default()
    };
    tune(&mut settings);
    let (writer, _) = Writer::spawn(b.sessions.clone(), WriterConfig::default());
    SessionContext {
        store: b.sessions.clone(),
        leases: b.leases.clone(),
        writer,
        drivers: DriverRegistry::with_scripted(),
        node: NodeId::new("test-node").unwrap(),
        settings,
        lease_book: LeaseBook::default(),
        nodes: b.nodes.clone(),
        notices: sessiond_actors::Notices::spawn(b.bus.clone()),
        settled: Default::default(),
        residents: Default::default(),
        supervisors: Default::default(),
    }
}

/// A new session with scripted `options`.
pub(crate) async fn create(b: &Backend, options: serde_json::Value) -> SessionMeta {
    let mut meta = new_meta(&fresh_tenant(), "proj", None);
    meta.driver_options = options.as_object().cloned().unwrap();
    b.sessions.create_session(&meta).await.unwrap();
    meta
}

/// A project supervisor over `b` with a fresh context, and the session's handle.
pub(crate) async fn activate(b: &Backend, meta: &SessionMeta) -> (ProjectHandle, SessionHandle) {
    activate_in(context(b), meta).await
}

/// A project supervisor on `ctx`, and the session's handle.
pub(crate) async fn activate_in(
    ctx: SessionContext,
    meta: &SessionMeta,
) -> (ProjectHandle, SessionHandle) {
    let project = ProjectHandle::spawn(ctx, meta.tenant.clone(), meta.project.clone())
        .await
        .unwrap();
    let session = project.activate(meta.clone()).await.unwrap();
    (project, session)
}

/// The session as stored.
pub(crate) async fn stored(b: &Backend, meta: &SessionMeta) -> SessionMeta {
    b.sessions
        .load_session(&meta.tenant, meta.id)
        .await
        .unwrap()
        .expect("session stored")
}

/// Waits until the stored session is idle with at least `last_seq`.
pub(crate) async fn wait_idle_with(b: &Backend, meta: &SessionMeta, last_seq: u64) -> SessionMeta {
    wait_until("session idle", Duration::from_secs(10), || async {
        let m = stored(b, meta).await;
        (m.status == SessionStatus::Idle && m.last_seq >= last_seq).then_some(m)
    })
    .await
}
