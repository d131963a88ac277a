//! The node registry in the file: what a node restarted after a crash finds, and the
//! migration that adds its tables to a file of an earlier schema.

use super::{DEADLINE, close};
use crate::backend::sqlite::{SqliteStore, schema, sql_id};
use crate::codec;
use crate::ids::{NodeId, SessionId};
use crate::node_registry::{NodeRecord, NodeRegistry};
use crate::records::now_ms;
use crate::session_store::SessionStore;
use crate::testing::conformance::{fresh_tenant, new_meta};

fn heartbeat_of(node: &NodeId) -> NodeRecord {
    NodeRecord {
        id: node.clone(),
        advertise: Some("http://127.0.0.1:8080".into()),
        started_at_ms: now_ms(),
        expires_at_ms: now_ms() + 10_000,
    }
}

#[tokio::test]
async fn a_restarted_node_finds_the_sessions_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/sessiond.db");
    let node = NodeId::new("node-embedded").unwrap();
    let t = fresh_tenant();
    let (kept, released) = (SessionId::generate(), SessionId::generate());
    let rec = heartbeat_of(&node);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.heartbeat(&rec).await.unwrap();
        store.add_held(&node, &t, kept).await.unwrap();
        store.add_held(&node, &t, released).await.unwrap();
        store.remove_held(&node, &t, released).await.unwrap();
        // The process dies here: no release, no remove_node. Every answer above came
        // after its COMMIT, so closing the file loses nothing a crash would keep.
        close(store).await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), vec![rec]);
    assert_eq!(store.held(&node).await.unwrap(), vec![(t, kept)]);
    close(store).await;
}

#[tokio::test]
async fn a_file_of_schema_v2_opens_and_gains_the_node_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = fresh_tenant();
    let old = new_meta(&t, "legacy", None);
    // A file as the release before the node registry wrote it, with one session.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(schema::V1).unwrap();
        conn.execute_batch(schema::V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO sessions (tenant, id, project, key, meta, last_seq, last_activity_ms)
             VALUES (?1, ?2, ?3, NULL, ?4, 0, ?5)",
            rusqlite::params![
                t.as_str(),
                sql_id(old.id),
                old.project.as_str(),
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
    assert!(store.nodes().await.unwrap().is_empty());
    let node = NodeId::new("n1").unwrap();
    let rec = heartbeat_of(&node);
    store.heartbeat(&rec).await.unwrap();
    store.add_held(&node, &t, old.id).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), vec![rec]);
    assert_eq!(store.held(&node).await.unwrap(), vec![(t, old.id)]);
    close(store).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(DEADLINE).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
}
