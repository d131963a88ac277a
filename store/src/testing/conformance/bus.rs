//! `EventBus`: publish/subscribe, fan-out, isolation, and the announcements a
//! commit makes on the same backend.

use std::time::Duration;

use super::{fresh_tenant, lease, msg, new_meta, write};
use crate::backend::Backend;
use crate::codec;
use crate::event_bus::{BusSignal, Channel};
use crate::ids::*;
use crate::records::*;

async fn next_payload(sub: &mut crate::event_bus::BusSubscription) -> BusEvent {
    let signal = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("a bus event within 5 s")
        .expect("bus open");
    match signal {
        BusSignal::Payload(p) => codec::decode(&p).expect("bus event decodes"),
        BusSignal::Reset => panic!("unexpected reset"),
    }
}

/// `EventBus`: publish/subscribe, fan-out, isolation, and the commit announcements
/// every `SessionStore` makes on the same backend.
pub async fn event_bus_suite(b: &Backend) {
    let t = fresh_tenant();
    let meta = new_meta(&t, "proj", None);
    let ch = Channel::session(&t, meta.id);
    let other = Channel::session(&t, SessionId::generate());
    let mut s1 = b.bus.subscribe(&ch).await.unwrap();
    let mut s2 = b.bus.subscribe(&ch).await.unwrap();
    let mut s_other = b.bus.subscribe(&other).await.unwrap();

    b.bus
        .publish(&ch, bytes::Bytes::from_static(b"ping"))
        .await
        .unwrap();
    for sub in [&mut s1, &mut s2] {
        let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
            .await
            .unwrap();
        assert_eq!(
            got,
            Some(BusSignal::Payload(bytes::Bytes::from_static(b"ping")))
        );
    }

    // A commit announces its messages, then the status, after they are durable.
    b.sessions.create_session(&meta).await.unwrap();
    let fence = lease(b, &meta, &NodeId::new("n1").unwrap()).await;
    let mut m = meta.clone();
    m.status = SessionStatus::Running;
    let mut w = write(
        &meta,
        fence,
        vec![msg(1, Role::User, "hi"), msg(2, Role::Assistant, "yo")],
    );
    w.meta = Some(m);
    b.sessions.commit(&[w]).await.unwrap();
    match next_payload(&mut s1).await {
        BusEvent::Messages { messages } => {
            assert_eq!(
                messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
                vec![1, 2]
            );
            assert_eq!(messages[1].content, "yo");
        }
        e => panic!("expected messages, got {e:?}"),
    }
    match next_payload(&mut s1).await {
        BusEvent::Status(s) => {
            assert_eq!(s.status, SessionStatus::Running);
            assert_eq!(s.last_seq, 2);
            assert_eq!(s.session_id, meta.id);
        }
        e => panic!("expected status, got {e:?}"),
    }
    // A duplicate-only retry announces no messages again.
    let retry = write(&meta, fence, vec![msg(2, Role::Assistant, "yo")]);
    b.sessions.commit(&[retry]).await.unwrap();
    b.bus
        .publish(&ch, bytes::Bytes::from_static(b"marker"))
        .await
        .unwrap();
    // s2 has read "ping"; next are the commit's two events (none for the
    // retry), then the marker.
    for _ in 0..2 {
        next_payload(&mut s2).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(5), s2.recv())
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(BusSignal::Payload(bytes::Bytes::from_static(b"marker")))
    );

    // Nothing leaked to the other session's channel.
    b.bus
        .publish(&other, bytes::Bytes::from_static(b"own"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), s_other.recv())
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(BusSignal::Payload(bytes::Bytes::from_static(b"own")))
    );

    // Unsubscribe and subscribe again: the channel works afresh.
    drop(s1);
    drop(s2);
    let mut s3 = b.bus.subscribe(&ch).await.unwrap();
    b.bus
        .publish(&ch, bytes::Bytes::from_static(b"again"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), s3.recv())
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(BusSignal::Payload(bytes::Bytes::from_static(b"again")))
    );

    // A batch over several channels: each channel's payloads in the batch's order.
    let batch_channels = [
        Channel::project(&t, &meta.project),
        Channel::node(&NodeId::new("batch-node").unwrap()),
        Channel::session(&t, SessionId::generate()),
    ];
    let mut batch_subs = Vec::new();
    for ch in &batch_channels {
        batch_subs.push(b.bus.subscribe(ch).await.unwrap());
    }
    let mut batch = Vec::new();
    for i in 0..30u32 {
        let ch = &batch_channels[i as usize % batch_channels.len()];
        batch.push((ch.clone(), bytes::Bytes::from(i.to_string())));
    }
    b.bus.publish_batch(&batch).await.unwrap();
    for (k, sub) in batch_subs.iter_mut().enumerate() {
        for i in (k as u32..30).step_by(batch_channels.len()) {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
                .await
                .expect("a batched payload within 5 s");
            assert_eq!(
                got,
                Some(BusSignal::Payload(bytes::Bytes::from(i.to_string()))),
                "channel {k}, payload {i}"
            );
        }
    }

    // Project channels work the same way.
    let pch = Channel::project(&t, &meta.project);
    let mut ps = b.bus.subscribe(&pch).await.unwrap();
    b.bus
        .publish(&pch, bytes::Bytes::from_static(b"proj"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), ps.recv())
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(BusSignal::Payload(bytes::Bytes::from_static(b"proj")))
    );
}
