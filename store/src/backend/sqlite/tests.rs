//! Tests of what only the SQLite backend has: a file that outlives the process, the
//! batching writer thread, migrations. The shared semantics are in the conformance
//! suites (`store/tests/conformance.rs`). `nodes`: the node registry across a restart
//! and its migration.

use std::time::Duration;

use super::*;
use crate::records::Role;
use crate::testing::conformance::{fresh_tenant, msg, new_meta};
use crate::testing::wait_until;

mod nodes;

const DEADLINE: Duration = Duration::from_secs(10);

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

/// Drops the store and waits until its writer thread has closed the file.
async fn close(store: SqliteStore) {
    let mut exited = store.inner.writer.exited();
    drop(store);
    tokio::time::timeout(DEADLINE, exited.changed())
        .await
        .expect("writer thread exits when the store is dropped")
        .expect_err("the thread drops its end on exit");
}

/// Parks the writer thread inside a request until the returned sender fires, so that
/// requests sent meanwhile queue up and run as one batch.
async fn hold_writer(store: &SqliteStore) -> std::sync::mpsc::Sender<()> {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered) = tokio::sync::oneshot::channel();
    let s = store.clone();
    tokio::spawn(async move {
        s.inner
            .writer
            .call(move |_| {
                let _ = entered_tx.send(());
                let _ = wait.recv();
                Ok(())
            })
            .await
    });
    entered.await.expect("writer takes the holding request");
    release
}

async fn wait_queued(store: &SqliteStore, n: usize) {
    wait_until("requests queued", DEADLINE, || async {
        (store.inner.writer.queued() == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directories do not exist yet.
    let path = dir.path().join("nested/data/sessiond.db");
    let t = fresh_tenant();
    let node = NodeId::new("n1").unwrap();
    let meta = new_meta(&t, "proj", Some("main"));

    let store = SqliteStore::open(&path).await.unwrap();
    let b = store.backend();
    b.sessions.create_session(&meta).await.unwrap();
    let LeaseGrant::Granted { fence } = b
        .leases
        .acquire(&t, meta.id, &node, Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("granted");
    };
    let mut running = meta.clone();
    running.status = crate::records::SessionStatus::Running;
    let mut w = write(
        &meta,
        fence,
        vec![msg(1, Role::User, "hi"), msg(2, Role::Assistant, "hello")],
    );
    w.meta = Some(running.clone());
    b.sessions.commit(&[w]).await.unwrap();
    // Messages only: the meta blob is not rewritten, its last_seq must still read 3.
    b.sessions
        .commit(&[write(&meta, fence, vec![msg(3, Role::User, "again")])])
        .await
        .unwrap();
    let log_before = b.sessions.read_log(&t, meta.id, 0, 10).await.unwrap();
    drop(b);
    close(store).await;

    let store = SqliteStore::open(&path).await.unwrap();
    let b = store.backend();
    let loaded = b.sessions.load_session(&t, meta.id).await.unwrap().unwrap();
    running.last_seq = 3;
    assert_eq!(loaded, running);
    assert_eq!(
        b.sessions.read_log(&t, meta.id, 0, 10).await.unwrap(),
        log_before
    );
    assert_eq!(log_before.len(), 3);
    let key = SessionKey::new("main").unwrap();
    assert_eq!(
        b.sessions
            .resolve_key(&t, &meta.project, &key)
            .await
            .unwrap(),
        Some(meta.id)
    );
    assert_eq!(
        b.leases.owner(&t, meta.id).await.unwrap(),
        Some(node.clone())
    );
    // The old fence still writes after a restart; a new grant fences it out.
    let LeaseGrant::Granted { fence: newer } = b
        .leases
        .acquire(&t, meta.id, &node, Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("holder re-acquires");
    };
    assert!(newer > fence, "fences keep growing across restarts");
    assert_eq!(
        b.sessions
            .commit(&[write(&meta, fence, vec![msg(4, Role::User, "late")])])
            .await
            .unwrap(),
        vec![CommitOutcome::Fenced]
    );
    drop(b);
    close(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_are_batched_and_all_land() {
    const SESSIONS: usize = 200;
    const COMMITS: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    let t = fresh_tenant();
    let metas: Vec<_> = (0..SESSIONS).map(|_| new_meta(&t, "proj", None)).collect();
    for m in &metas {
        store.create_session(m).await.unwrap();
    }

    // Round 1, all queued behind a parked writer: they must run as one transaction.
    let release = hold_writer(&store).await;
    let before = store.writer_stats();
    // No lease was ever taken on these sessions: their fence is 0.
    let round1: Vec<_> = metas
        .iter()
        .map(|m| {
            let (s, w) = (store.clone(), write(m, 0, vec![msg(1, Role::User, "1")]));
            tokio::spawn(async move { s.commit(&[w]).await })
        })
        .collect();
    wait_queued(&store, SESSIONS).await;
    release.send(()).unwrap();
    for task in round1 {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 1 }]);
    }
    let after = store.writer_stats();
    assert_eq!(after.batches - before.batches, 1, "{before:?} -> {after:?}");
    assert_eq!(after.requests - before.requests, SESSIONS as u64);

    // The other rounds race freely, each session's commits in order.
    let tasks: Vec<_> = metas
        .iter()
        .map(|m| {
            let (s, m) = (store.clone(), m.clone());
            tokio::spawn(async move {
                for seq in 2..=COMMITS {
                    let mut w = write(&m, 0, vec![msg(seq, Role::Assistant, &seq.to_string())]);
                    if seq == COMMITS {
                        let mut meta = m.clone();
                        meta.last_activity_ms += 1;
                        w.meta = Some(meta);
                    }
                    let out = s.commit(&[w]).await.unwrap();
                    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: seq }]);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for m in &metas {
        let log = store.read_log(&t, m.id, 0, 100).await.unwrap();
        let seqs: Vec<_> = log.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=COMMITS).collect::<Vec<_>>());
        let loaded = store.load_session(&t, m.id).await.unwrap().unwrap();
        assert_eq!(loaded.last_seq, COMMITS);
    }
    assert_eq!(
        store
            .list_sessions(&t, &metas[0].project)
            .await
            .unwrap()
            .len(),
        SESSIONS
    );
}

#[tokio::test]
async fn a_failing_or_panicking_request_spoils_no_other_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    let t = fresh_tenant();
    let (a, b) = (new_meta(&t, "proj", None), new_meta(&t, "proj", None));
    store.create_session(&a).await.unwrap();
    store.create_session(&b).await.unwrap();

    // Writes a stray row for `b` at seq 1, then fails: the row must be rolled back,
    // or the good commit of b's seq 1 below would hit the primary key.
    let (bt, bid) = (t.clone(), b.id);
    let stray = move |conn: &rusqlite::Connection| {
        conn.execute(
            "INSERT INTO messages (tenant, session_id, seq, body) VALUES (?1, ?2, 1, x'00')",
            rusqlite::params![bt.as_str(), sql_id(bid)],
        )
    };
    let release = hold_writer(&store).await;
    let before = store.writer_stats();
    let (s, w) = (store.clone(), write(&a, 0, vec![msg(1, Role::User, "a")]));
    let good_a = tokio::spawn(async move { s.commit(&[w]).await });
    wait_queued(&store, 1).await;
    let (s, f) = (store.clone(), stray.clone());
    let panics = tokio::spawn(async move {
        s.inner
            .writer
            .call(move |conn| -> Result<()> {
                f(conn)?;
                panic!("request bug")
            })
            .await
    });
    wait_queued(&store, 2).await;
    let s = store.clone();
    let fails = tokio::spawn(async move {
        s.inner
            .writer
            .call(move |conn| -> Result<()> {
                stray(conn)?;
                Err(StoreError::Conflict("refused".into()))
            })
            .await
    });
    wait_queued(&store, 3).await;
    let (s, w) = (store.clone(), write(&b, 0, vec![msg(1, Role::User, "b")]));
    let good_b = tokio::spawn(async move { s.commit(&[w]).await });
    wait_queued(&store, 4).await;
    release.send(()).unwrap();

    let committed = vec![CommitOutcome::Committed { last_seq: 1 }];
    assert_eq!(good_a.await.unwrap().unwrap(), committed);
    assert!(matches!(
        panics.await.unwrap(),
        Err(StoreError::Unavailable(e)) if e.contains("request bug")
    ));
    assert!(matches!(fails.await.unwrap(), Err(StoreError::Conflict(_))));
    assert_eq!(good_b.await.unwrap().unwrap(), committed);
    let after = store.writer_stats();
    assert_eq!(
        (
            after.batches - before.batches,
            after.requests - before.requests
        ),
        (1, 4)
    );
    let log = store.read_log(&t, b.id, 0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].content, "b");

    // The writer thread lives on.
    let out = store
        .commit(&[write(&a, 0, vec![msg(2, Role::User, "a2")])])
        .await
        .unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 2 }]);
}

#[tokio::test]
async fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    close(SqliteStore::open(&path).await.unwrap()).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
    conn.pragma_update(None, "user_version", version + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[tokio::test]
async fn a_file_of_schema_v1_opens_and_gains_the_new_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = fresh_tenant();
    let old = new_meta(&t, "legacy", Some("main"));
    // A file as the first release wrote it, with one session.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(schema::V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO sessions (tenant, id, project, key, meta, last_seq, last_activity_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
            rusqlite::params![
                t.as_str(),
                sql_id(old.id),
                old.project.as_str(),
                "main",
                codec::encode(&old).unwrap(),
                old.last_activity_ms
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.load_session(&t, old.id).await.unwrap(),
        Some(old.clone())
    );
    // The project list starts with the projects the file already had.
    assert_eq!(
        store.list_projects(&t).await.unwrap(),
        std::slice::from_ref(&old.project)
    );
    // The new features work on the old session.
    let mut w = write(
        &old,
        0,
        vec![msg(1, Role::User, "a"), msg(2, Role::User, "b")],
    );
    w.archive = Some(crate::ArchiveUpTo {
        upto_seq: 1,
        ttl_ms: 60_000,
    });
    assert_eq!(
        store.commit(&[w]).await.unwrap(),
        vec![CommitOutcome::Committed { last_seq: 2 }]
    );
    assert_eq!(
        store.read_archive(&t, old.id, 0, 10).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.delete_session(&t, old.id, 0, None).await.unwrap(),
        crate::DeleteOutcome::Deleted
    );
    close(store).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
}

fn count(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn expired_archives_and_keys_are_ignored_then_swept_by_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let t = fresh_tenant();
    let meta = new_meta(&t, "proj", None);
    store.create_session(&meta).await.unwrap();
    let mut w = write(&meta, 0, vec![msg(1, Role::User, "a")]);
    w.archive = Some(crate::ArchiveUpTo {
        upto_seq: 1,
        ttl_ms: 60_000,
    });
    w.idempotency = Some(crate::IdempotencyRecord {
        key: "k1".into(),
        answer: "x".into(),
        ttl_ms: 60_000,
    });
    store.commit(&[w]).await.unwrap();
    // Time passes: both expire (set in the file, as the clock cannot be moved).
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(DEADLINE).unwrap();
    raw.execute_batch(
        "UPDATE archives SET expires_at_ms = 0; UPDATE idempotency SET expires_at_ms = 0;",
    )
    .unwrap();
    let scope = crate::IdempotencyScope::Session(meta.id);
    assert!(
        store
            .read_archive(&t, meta.id, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.idempotent_answer(&t, &scope, "k1").await.unwrap(),
        None
    );
    assert_eq!(count(&raw, "archived_messages"), 1, "ignored, not yet gone");
    assert_eq!(count(&raw, "idempotency"), 1);

    let project = crate::IdempotencyScope::Project(meta.project.clone());
    let live = crate::IdempotencyRecord {
        key: "k2".into(),
        answer: "y".into(),
        ttl_ms: 60_000,
    };
    assert_eq!(
        store.claim_idempotency(&t, &project, &live).await.unwrap(),
        None
    );
    assert_eq!(count(&raw, "archived_messages"), 0);
    assert_eq!(count(&raw, "archives"), 0);
    assert_eq!(count(&raw, "idempotency"), 1, "only the live key is left");
    close(store).await;
}
