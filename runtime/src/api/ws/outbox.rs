//! The way toward the client: a bounded queue of frames, one writer task that
//! owns the socket's sending half, and the slow-client rule.
//!
//! Everything that sends (the event pump, the command worker) goes through the
//! queue, so one task writes and frames never interleave. The queue is bounded:
//! a producer waits for room, which slows the event pump down to the client's
//! pace (the event stream then catches up from the store, as for SSE). A client
//! that reads nothing for [`STALL`] while the queue is full is not slow but
//! absent: the socket is closed with 1008 rather than held open forever.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use sessiond_client::model::ServerFrame;

/// Frames that may wait for the client. Enough for bursts (a replay page, a
/// run's chunks) while a healthy client catches up; small enough that a socket
/// holds little memory.
pub(super) const CAPACITY: usize = 256;

/// How long a frame may wait for room in a full queue before the client counts
/// as not reading.
pub(super) const STALL: Duration = Duration::from_secs(10);

/// How long the last queued frames and the close frame may take once the socket
/// ends; a client that does not read them is cut off after it.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Keep-alive pings, as the SSE route's comments: idle proxies keep the socket.
const PING_EVERY: Duration = Duration::from_secs(15);

/// The sending side of the queue; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    tx: mpsc::Sender<Message>,
    overflowed: CancellationToken,
}

/// What became of a frame given to [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The socket is over; nothing more will be written.
    Closed,
    /// The queue stayed full for [`STALL`]: the client does not read.
    Overflowed,
}

impl Outbox {
    /// A queue of `capacity` frames; the receiver goes to [`spawn_writer`].
    pub(super) fn new(capacity: usize) -> (Self, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(capacity);
        let outbox = Self {
            tx,
            overflowed: CancellationToken::new(),
        };
        (outbox, rx)
    }

    /// Queues `frame`, waiting up to [`STALL`] for room.
    pub(super) async fn push(&self, frame: &ServerFrame) -> Pushed {
        let text = serde_json::to_string(frame).unwrap_or_else(|e| {
            // Every frame is made of strings, numbers and JSON values: this is a
            // bug, so say so on the socket rather than skip a frame silently.
            tracing::error!(error = %e, "unserializable websocket frame");
            r#"{"event":"error","data":{"error":{"code":"internal","message":"internal error"}}}"#
                .to_string()
        });
        match self.tx.send_timeout(Message::text(text), STALL).await {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.overflowed.cancel();
                Pushed::Overflowed
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Pushed::Closed,
        }
    }

    /// Resolves once a push found the queue full for [`STALL`].
    pub(super) async fn overflowed(&self) {
        self.overflowed.cancelled().await;
    }
}

/// The writer task; [`Writer::finish`] ends it.
#[derive(Debug)]
pub(super) struct Writer {
    finish: oneshot::Sender<Option<CloseFrame>>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Writes what is still queued and then `close`, or with `None` (the client
    /// closed) only the answer to the client's close frame; within
    /// [`CLOSE_GRACE`]. Returns when the writer ended.
    pub(super) async fn finish(self, close: Option<CloseFrame>) {
        // An error means the writer already ended (the socket failed).
        let _ = self.finish.send(close);
        let _ = self.task.await;
    }
}

/// Starts the task that writes the queue's frames to `sink`.
pub(super) fn spawn_writer<S>(sink: S, rx: mpsc::Receiver<Message>) -> Writer
where
    S: Sink<Message> + Unpin + Send + 'static,
{
    let (finish, finished) = oneshot::channel();
    let task = tokio::spawn(write(sink, rx, finished));
    Writer { finish, task }
}

async fn write<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Message>,
    mut finished: oneshot::Receiver<Option<CloseFrame>>,
) where
    S: Sink<Message> + Unpin,
{
    let start = tokio::time::Instant::now() + PING_EVERY;
    let mut ping = tokio::time::interval_at(start, PING_EVERY);
    // After a long blocked write one ping is enough, not one per missed tick.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A frame taken off the queue but not yet handed to the sink when the end came.
    let mut carried = None;
    let close = loop {
        let next = tokio::select! {
            // The end first: it decides what the last words are.
            biased;
            close = &mut finished => break close.ok().flatten(),
            frame = rx.recv() => match frame {
                Some(frame) => frame,
                // Every producer is gone: the socket is ending. Its end (with the
                // close frame to send) comes next, unless it was dropped.
                None => {
                    break tokio::time::timeout(CLOSE_GRACE, &mut finished)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .flatten();
                }
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        // A write can wait on a client that does not read: the end of the socket
        // must still get through. The frame is handed to the sink only once it
        // has room, so an end that arrives first keeps the frame (it goes out
        // with the last words, in order) instead of dropping it; once handed
        // over, it is in the sink's buffer and the last words flush it.
        let ready = tokio::select! {
            biased;
            ready = std::future::poll_fn(|cx| sink.poll_ready_unpin(cx)) => ready.is_ok(),
            close = &mut finished => {
                carried = Some(next);
                break close.ok().flatten();
            }
        };
        if !ready || sink.start_send_unpin(next).is_err() {
            return;
        }
        tokio::select! {
            biased;
            flushed = std::future::poll_fn(|cx| sink.poll_flush_unpin(cx)) => if flushed.is_err() {
                return;
            },
            close = &mut finished => break close.ok().flatten(),
        }
    };
    let last_words = async {
        let Some(frame) = close else {
            // The client closed: nothing may follow its close frame but the
            // protocol's answer to it, which this flushes.
            let _ = sink.close().await;
            return;
        };
        rx.close();
        if let Some(frame) = carried
            && sink.send(frame).await.is_err()
        {
            return;
        }
        while let Some(queued) = rx.recv().await {
            if sink.send(queued).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(Some(frame))).await;
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, last_words).await;
}

/// A close frame; the reason is cut to the protocol's 123 bytes.
pub(super) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use super::*;
    use sessiond_client::model::LaggedView;

    fn frame(after_seq: u64) -> ServerFrame {
        ServerFrame::Lagged {
            data: LaggedView { after_seq },
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_that_nobody_drains_overflows_after_the_stall() {
        let (outbox, rx) = Outbox::new(1);
        assert_eq!(outbox.push(&frame(1)).await, Pushed::Queued);
        let started = tokio::time::Instant::now();
        // Paused time jumps ahead to the stall deadline: nothing reads `rx`.
        assert_eq!(outbox.push(&frame(2)).await, Pushed::Overflowed);
        assert!(started.elapsed() >= STALL);
        tokio::time::timeout(Duration::from_secs(1), outbox.overflowed())
            .await
            .expect("overflow is signalled");
        drop(rx);
        assert_eq!(outbox.push(&frame(3)).await, Pushed::Closed);
    }

    /// Frames 1..=3 then a 1001 close, and nothing else.
    fn assert_frames_then_close(sent: &[Message]) {
        assert_eq!(sent.len(), 4, "{sent:?}");
        for (i, m) in sent[..3].iter().enumerate() {
            let want = format!("\"after_seq\":{}", i + 1);
            assert!(
                matches!(m, Message::Text(t) if t.as_str().contains(&want)),
                "frame {i}: {sent:?}"
            );
        }
        assert!(matches!(&sent[3], Message::Close(Some(f)) if f.code == 1001));
    }

    // The writer's select picks at random among ready branches, so each case
    // runs many times: the end racing a frame in hand must never drop it.
    const ROUNDS: usize = 64;

    #[tokio::test(start_paused = true)]
    async fn the_writer_sends_queued_frames_then_the_close_frame() {
        for _ in 0..ROUNDS {
            let (outbox, rx) = Outbox::new(4);
            let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
            let writer = spawn_writer(sink, rx);
            for seq in 1..=3 {
                assert_eq!(outbox.push(&frame(seq)).await, Pushed::Queued);
            }
            writer
                .finish(Some(close_frame(1001, "node stopping")))
                .await;
            let mut texts = Vec::new();
            while let Ok(m) = sent.try_recv() {
                texts.push(m);
            }
            assert_frames_then_close(&texts);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn frames_behind_a_slow_reader_all_go_out_before_the_close() {
        use futures::StreamExt;
        for _ in 0..ROUNDS {
            let (outbox, rx) = Outbox::new(4);
            // No room beyond one frame: the writer holds the next frame while
            // the client has not read the one before.
            let (sink, sent) = futures::channel::mpsc::channel::<Message>(0);
            let reader = tokio::spawn(sent.collect::<Vec<_>>());
            let writer = spawn_writer(sink, rx);
            for seq in 1..=3 {
                assert_eq!(outbox.push(&frame(seq)).await, Pushed::Queued);
            }
            writer
                .finish(Some(close_frame(1001, "node stopping")))
                .await;
            assert_frames_then_close(&reader.await.expect("reader"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_close_frame_goes_out_when_the_producers_left_first() {
        use futures::StreamExt;
        let (outbox, rx) = Outbox::new(4);
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let writer = spawn_writer(sink, rx);
        for seq in 1..=3 {
            assert_eq!(outbox.push(&frame(seq)).await, Pushed::Queued);
        }
        // Every producer is gone before the end is given (as when the socket's
        // tasks end first): the writer drains the queue and finds it closed.
        drop(outbox);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(sent.next().await.expect("a frame"));
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        writer
            .finish(Some(close_frame(1001, "node stopping")))
            .await;
        while let Ok(m) = sent.try_recv() {
            got.push(m);
        }
        assert_frames_then_close(&got);
    }

    /// A sink with no room until a second has passed (paused time), which says
    /// when the writer first asked for room.
    struct GatedSink {
        gate: Pin<Box<tokio::time::Sleep>>,
        asked: Arc<AtomicBool>,
        sent: Arc<Mutex<Vec<Message>>>,
    }

    impl Sink<Message> for GatedSink {
        type Error = std::convert::Infallible;

        fn poll_ready(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.asked.store(true, Ordering::SeqCst);
            self.gate.as_mut().poll(cx).map(Ok)
        }

        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            self.sent.lock().unwrap().push(item);
            Ok(())
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_in_hand_when_the_end_comes_goes_out_first() {
        let (outbox, rx) = Outbox::new(4);
        let asked = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = GatedSink {
            gate: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
            asked: asked.clone(),
            sent: sent.clone(),
        };
        let writer = spawn_writer(sink, rx);
        assert_eq!(outbox.push(&frame(1)).await, Pushed::Queued);
        // The writer took frame 1 off the queue and waits for room for it.
        for _ in 0..1000 {
            if asked.load(Ordering::SeqCst) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(asked.load(Ordering::SeqCst), "the writer asked for room");
        for seq in 2..=3 {
            assert_eq!(outbox.push(&frame(seq)).await, Pushed::Queued);
        }
        // The end comes while frame 1 is in hand; the room comes within the grace.
        writer
            .finish(Some(close_frame(1001, "node stopping")))
            .await;
        assert_frames_then_close(&sent.lock().unwrap());
    }

    #[test]
    fn close_reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let f = close_frame(1002, &long);
        assert!(f.reason.as_str().len() <= 123);
        assert!(long.starts_with(f.reason.as_str()));
    }
}
