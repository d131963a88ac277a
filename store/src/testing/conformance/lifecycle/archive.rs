//! Archive moves on commit, and archive expiry.

use super::*;

/// Archive on commit: messages leave the live log for the archive (after the write's
/// own messages are appended), are found there dense and whole, never in both; the
/// log reads on after the trim; appends continue at last + 1 after a full archive; a
/// refused write archives nothing; the meta's `archived_upto` round-trips.
pub async fn archive_on_commit_suite(b: &Backend) {
    let t = fresh_tenant();
    let s = &b.sessions;
    let (meta, fence) = leased(b, &t, "proj", None).await;
    let all = texts(1, 9);
    let committed = |n| vec![CommitOutcome::Committed { last_seq: n }];
    assert_eq!(
        s.commit(&[write(&meta, fence, all[..5].to_vec())])
            .await
            .unwrap(),
        committed(5)
    );
    assert!(read_all(b, &meta, true).await.is_empty(), "no archive yet");

    // Append 6, then move up to 3; the meta says so.
    let mut compacted = meta.clone();
    compacted.archived_upto = 3;
    let mut w = archiving(write(&meta, fence, all[5..6].to_vec()), 3, LONG_MS);
    w.meta = Some(compacted.clone());
    assert_eq!(s.commit(&[w]).await.unwrap(), committed(6));
    assert_eq!(read_all(b, &meta, false).await, all[3..6]);
    assert_eq!(read_all(b, &meta, true).await, all[..3], "archived whole");
    assert_eq!(seqs(&s.read_log(&t, meta.id, 4, 10).await.unwrap()), [5, 6]);
    assert_eq!(
        seqs(&s.read_log(&t, meta.id, 0, 1).await.unwrap()),
        [4],
        "a read from before the trim starts at the first live message"
    );
    assert_eq!(seqs(&s.read_archive(&t, meta.id, 1, 1).await.unwrap()), [2]);
    assert!(s.read_archive(&t, meta.id, 3, 10).await.unwrap().is_empty());
    let loaded = s.load_session(&t, meta.id).await.unwrap().unwrap();
    assert_eq!((loaded.archived_upto, loaded.last_seq), (3, 6));

    // Nothing left at or below 2: the archive and the log stay as they are.
    let w = archiving(write(&meta, fence, vec![]), 2, LONG_MS);
    assert_eq!(s.commit(&[w]).await.unwrap(), committed(6));
    assert_eq!(seqs(&read_all(b, &meta, false).await), [4, 5, 6]);
    assert_eq!(seqs(&read_all(b, &meta, true).await), [1, 2, 3]);

    // A full archive (reset) that takes the write's own new messages along.
    let mut reset = meta.clone();
    reset.archived_upto = 8;
    let mut w = archiving(write(&meta, fence, all[6..8].to_vec()), 8, LONG_MS);
    w.meta = Some(reset);
    assert_eq!(s.commit(&[w]).await.unwrap(), committed(8));
    assert!(read_all(b, &meta, false).await.is_empty());
    assert_eq!(read_all(b, &meta, true).await, all[..8], "dense, in order");
    let loaded = s.load_session(&t, meta.id).await.unwrap().unwrap();
    assert_eq!((loaded.archived_upto, loaded.last_seq), (8, 8));

    // Appends continue at last + 1; the log's rules are unchanged.
    assert_eq!(
        s.commit(&[write(&meta, fence, vec![msg(10, Role::User, "gap")])])
            .await
            .unwrap(),
        vec![CommitOutcome::Gap { last_seq: 8 }]
    );
    assert_eq!(
        s.commit(&[write(&meta, fence, all[7..].to_vec())])
            .await
            .unwrap(),
        committed(9),
        "8 is a duplicate even though it left the log"
    );
    assert_eq!(read_all(b, &meta, false).await, all[8..]);
    assert_eq!(read_all(b, &meta, true).await, all[..8]);

    // Refused writes archive nothing: a gap, a stale fence, a missing session.
    let gapped = archiving(
        write(&meta, fence, vec![msg(11, Role::User, "x")]),
        9,
        LONG_MS,
    );
    assert_eq!(
        s.commit(&[gapped]).await.unwrap(),
        vec![CommitOutcome::Gap { last_seq: 9 }]
    );
    let newer = lease(b, &meta, &NodeId::new("n1").unwrap()).await;
    let stale = archiving(write(&meta, fence, vec![]), 9, LONG_MS);
    assert_eq!(
        s.commit(&[stale]).await.unwrap(),
        vec![CommitOutcome::Fenced]
    );
    let missing = new_meta(&t, "proj", None);
    let w = archiving(write(&missing, 0, texts(1, 1)), 1, LONG_MS);
    assert_eq!(s.commit(&[w]).await.unwrap(), vec![CommitOutcome::Missing]);
    assert_eq!(read_all(b, &meta, false).await, all[8..]);
    assert_eq!(
        seqs(&read_all(b, &meta, true).await),
        (1..=8).collect::<Vec<_>>()
    );
    assert!(read_all(b, &missing, true).await.is_empty());

    // The holder of the newer fence archives, in one group commit with other writes.
    let (other, other_fence) = leased(b, &t, "proj", None).await;
    let out = s
        .commit(&[
            write(&other, other_fence, texts(1, 2)),
            archiving(write(&meta, newer, texts(10, 10)), 9, LONG_MS),
            archiving(write(&other, other_fence, vec![]), 1, LONG_MS),
        ])
        .await
        .unwrap();
    assert_eq!(out, [committed(2), committed(10), committed(2)].concat());
    assert_eq!(seqs(&read_all(b, &meta, false).await), [10]);
    assert_eq!(
        seqs(&read_all(b, &meta, true).await),
        (1..=9).collect::<Vec<_>>()
    );
    assert_eq!(seqs(&read_all(b, &other, false).await), [2]);
    assert_eq!(seqs(&read_all(b, &other, true).await), [1]);

    // "Everything": the largest seq there is.
    let w = archiving(write(&meta, newer, vec![]), u64::MAX, LONG_MS);
    assert_eq!(s.commit(&[w]).await.unwrap(), committed(10));
    assert!(read_all(b, &meta, false).await.is_empty());
    assert_eq!(
        seqs(&read_all(b, &meta, true).await),
        (1..=10).collect::<Vec<_>>()
    );
}

/// An archive lives `ttl_ms` from its last move, then reads empty; a move into an
/// expired archive starts it afresh.
pub async fn archive_expiry_suite(b: &Backend) {
    let t = fresh_tenant();
    let s = &b.sessions;
    let (meta, fence) = leased(b, &t, "proj", None).await;
    let w = archiving(write(&meta, fence, texts(1, 3)), 2, 1);
    assert_eq!(
        s.commit(&[w]).await.unwrap(),
        vec![CommitOutcome::Committed { last_seq: 3 }]
    );
    wait_until("the archive expires", EXPIRY_DEADLINE, || async {
        s.read_archive(&t, meta.id, 0, 10)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(seqs(&read_all(b, &meta, false).await), [3], "the log stays");

    let w = archiving(write(&meta, fence, texts(4, 4)), 3, LONG_MS);
    assert_eq!(
        s.commit(&[w]).await.unwrap(),
        vec![CommitOutcome::Committed { last_seq: 4 }]
    );
    assert_eq!(
        seqs(&read_all(b, &meta, true).await),
        [3],
        "expired messages do not come back"
    );
    assert_eq!(seqs(&read_all(b, &meta, false).await), [4]);
}
