//! The keys behind archives, idempotency keys, retention policies, the project list
//! and deletes, against a real redis-server.

use redis::AsyncCommands;

use super::{raw, session, write};
use crate::backend::redis::connect_redis;
use crate::codec;
use crate::records::RetentionPolicy;
use crate::session_store::{
    ArchiveUpTo, CommitOutcome, CreateOutcome, DeleteOutcome, IdempotencyRecord, IdempotencyScope,
};
use crate::testing::redis_server::RedisServer;

#[tokio::test]
async fn archive_idempotency_and_delete_keys_are_laid_out_as_documented() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let (meta, fence) = session(&b, Some("main")).await;
    let mut w = write(&meta, fence, 1..=3);
    w.archive = Some(ArchiveUpTo {
        upto_seq: 2,
        ttl_ms: 60_000,
    });
    w.idempotency = Some(IdempotencyRecord {
        key: "req-1".into(),
        answer: "{\"ok\":1}".into(),
        ttl_ms: 30_000,
    });
    let out = b.sessions.commit(&[w]).await.unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 3 }]);

    let mut r = raw(&server.url()).await;
    let (t, sid) = (&meta.tenant, meta.id);
    let base = format!("sd:{t}:s:{{{sid}}}");
    let ids = |reply: redis::streams::StreamRangeReply| -> Vec<String> {
        reply.ids.into_iter().map(|e| e.id).collect()
    };
    assert_eq!(
        ids(r.xrange_all(format!("{base}:log")).await.unwrap()),
        ["3-0"]
    );
    assert_eq!(
        ids(r.xrange_all(format!("{base}:arch")).await.unwrap()),
        ["1-0", "2-0"]
    );
    // The trim keeps the log's last id, which append.lua continues from.
    let info: redis::streams::StreamInfoStreamReply =
        r.xinfo_stream(format!("{base}:log")).await.unwrap();
    assert_eq!(info.last_generated_id, "3-0");
    let arch_ttl: i64 = r.pttl(format!("{base}:arch")).await.unwrap();
    assert!(arch_ttl > 30_000 && arch_ttl <= 60_000, "{arch_ttl}");
    let answer: String = r.get(format!("{base}:idem:req-1")).await.unwrap();
    assert_eq!(answer, "{\"ok\":1}");
    let idem_ttl: i64 = r.pttl(format!("{base}:idem:req-1")).await.unwrap();
    assert!(idem_ttl > 0 && idem_ttl <= 30_000, "{idem_ttl}");
    let projects: Vec<String> = r.smembers(format!("sd:{t}:projects")).await.unwrap();
    assert_eq!(projects, ["proj"]);

    let policy = RetentionPolicy {
        max_sessions: 2,
        max_age_days: 3,
    };
    b.sessions
        .set_retention(t, &meta.project, &policy)
        .await
        .unwrap();
    let rec: Vec<u8> = r.get(format!("sd:{t}:p:proj:retention")).await.unwrap();
    assert_eq!(codec::decode::<RetentionPolicy>(&rec).unwrap(), policy);
    let scope = IdempotencyScope::Project(meta.project.clone());
    let create = IdempotencyRecord {
        key: "c-1".into(),
        answer: "s".into(),
        ttl_ms: 30_000,
    };
    b.sessions
        .claim_idempotency(t, &scope, &create)
        .await
        .unwrap();
    let answer: String = r.get(format!("sd:{t}:p:proj:idem:c-1")).await.unwrap();
    assert_eq!(answer, "s");

    // Delete keeping the archive: every per-session key but the archive (and the
    // idempotency keys, which expire) is gone, and so are the index entry and claim.
    let out = b
        .sessions
        .delete_session(t, sid, fence, Some(90_000))
        .await
        .unwrap();
    assert_eq!(out, DeleteOutcome::Deleted);
    for suffix in ["meta", "log", "lease", "fence"] {
        let exists: bool = r.exists(format!("{base}:{suffix}")).await.unwrap();
        assert!(!exists, "{suffix} is deleted");
    }
    assert_eq!(
        ids(r.xrange_all(format!("{base}:arch")).await.unwrap()),
        ["1-0", "2-0", "3-0"]
    );
    let arch_ttl: i64 = r.pttl(format!("{base}:arch")).await.unwrap();
    assert!(arch_ttl > 60_000 && arch_ttl <= 90_000, "{arch_ttl}");
    let score: Option<i64> = r
        .zscore(format!("sd:{t}:p:proj:idx"), sid.to_string())
        .await
        .unwrap();
    assert_eq!(score, None);
    let holder: Option<String> = r.hget(format!("sd:{t}:p:proj:keys"), "main").await.unwrap();
    assert_eq!(holder, None);
    let projects: Vec<String> = r.smembers(format!("sd:{t}:projects")).await.unwrap();
    assert_eq!(projects, ["proj"], "the project stays listed");
}

#[tokio::test]
async fn creating_a_deleted_session_id_again_starts_without_its_old_archive() {
    let server = RedisServer::start();
    let b = connect_redis(&server.url()).await.unwrap();
    let (meta, fence) = session(&b, None).await;
    b.sessions
        .commit(&[write(&meta, fence, 1..=3)])
        .await
        .unwrap();
    let out = b
        .sessions
        .delete_session(&meta.tenant, meta.id, fence, Some(60_000))
        .await
        .unwrap();
    assert_eq!(out, DeleteOutcome::Deleted);
    // A retried create after the delete: the old archive's ids would stand in the
    // way of archiving the new log's, so the create drops it.
    assert_eq!(
        b.sessions.create_session(&meta).await.unwrap(),
        CreateOutcome::Created
    );
    let mut w = write(&meta, 0, 1..=2);
    w.archive = Some(ArchiveUpTo {
        upto_seq: 2,
        ttl_ms: 60_000,
    });
    let out = b.sessions.commit(&[w]).await.unwrap();
    assert_eq!(out, vec![CommitOutcome::Committed { last_seq: 2 }]);
    let archived = b
        .sessions
        .read_archive(&meta.tenant, meta.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(archived.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
}
