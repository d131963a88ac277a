//! Deleting a session.

use super::*;

/// Delete: `Missing`, `Fenced`, `Deleted`; a deleted session is gone from load, list,
/// `resolve_key`, the log and the lease, its key is free, its fence writes nothing;
/// the archive stays with a TTL and goes without one.
pub async fn delete_suite(b: &Backend) {
    let t = fresh_tenant();
    let s = &b.sessions;
    let project = ProjectId::new("proj").unwrap();
    let key = SessionKey::new("main").unwrap();
    assert_eq!(
        s.delete_session(&t, SessionId::generate(), 0, None)
            .await
            .unwrap(),
        DeleteOutcome::Missing
    );

    let (meta, fence) = leased(b, &t, "proj", Some("main")).await;
    let w = archiving(write(&meta, fence, texts(1, 3)), 1, LONG_MS);
    s.commit(&[w]).await.unwrap();
    let (kept, _) = leased(b, &t, "proj", None).await;

    // A stale fence, and a fence never granted, delete nothing.
    let newer = lease(b, &meta, &NodeId::new("n1").unwrap()).await;
    for wrong in [fence, newer + 1] {
        assert_eq!(
            s.delete_session(&t, meta.id, wrong, Some(LONG_MS))
                .await
                .unwrap(),
            DeleteOutcome::Fenced
        );
    }
    assert!(s.load_session(&t, meta.id).await.unwrap().is_some());
    assert_eq!(seqs(&read_all(b, &meta, false).await), [2, 3]);

    assert_eq!(
        s.delete_session(&t, meta.id, newer, Some(LONG_MS))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(s.load_session(&t, meta.id).await.unwrap().is_none());
    let listed: Vec<_> = s
        .list_sessions(&t, &project)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, [kept.id], "only the other session is listed");
    assert_eq!(s.resolve_key(&t, &project, &key).await.unwrap(), None);
    assert!(read_all(b, &meta, false).await.is_empty());
    assert_eq!(
        seqs(&read_all(b, &meta, true).await),
        [1, 2, 3],
        "the live log joined the archive"
    );
    assert_eq!(b.leases.owner(&t, meta.id).await.unwrap(), None);
    assert_eq!(
        s.commit(&[write(&meta, newer, texts(4, 4))]).await.unwrap(),
        vec![CommitOutcome::Missing]
    );
    assert_eq!(
        s.delete_session(&t, meta.id, newer, None).await.unwrap(),
        DeleteOutcome::Missing
    );

    // The key is free for a new session.
    let successor = new_meta(&t, "proj", Some("main"));
    assert_eq!(
        s.create_session(&successor).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        s.resolve_key(&t, &project, &key).await.unwrap(),
        Some(successor.id)
    );

    // Without a TTL the archive goes too. No lease was ever taken: fence 0.
    let plain = new_meta(&t, "proj", Some("plain"));
    s.create_session(&plain).await.unwrap();
    let w = archiving(write(&plain, 0, texts(1, 2)), 1, LONG_MS);
    s.commit(&[w]).await.unwrap();
    assert_eq!(seqs(&read_all(b, &plain, true).await), [1]);
    assert_eq!(
        s.delete_session(&t, plain.id, 0, None).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(read_all(b, &plain, true).await.is_empty());
    assert!(read_all(b, &plain, false).await.is_empty());
    let plain_key = SessionKey::new("plain").unwrap();
    assert_eq!(s.resolve_key(&t, &project, &plain_key).await.unwrap(), None);

    // The others are untouched.
    assert!(s.load_session(&t, kept.id).await.unwrap().is_some());
    assert!(s.load_session(&t, successor.id).await.unwrap().is_some());
    assert_eq!(
        s.resolve_key(&t, &project, &key).await.unwrap(),
        Some(successor.id)
    );
}
