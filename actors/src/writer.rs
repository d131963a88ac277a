//! The node's writer: one task that group-commits the appends and meta writes of all
//! local sessions.
//!
//! There is no fixed batching window: the writer commits everything pending as soon
//! as its previous commit returns, so a lone write costs one round trip and a burst
//! becomes one large pipelined batch. Writes of one session are committed in the order
//! they were submitted. A failed commit is retried with backoff (a retry of a batch
//! whose fate is unknown is safe: seqs already stored answer DUP) until
//! `persist_deadline`; the queue toward the writer is bounded, so a slow store slows
//! the sessions down instead of anything being dropped.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sessiond_store::{CommitOutcome, Result as StoreResult, SessionStore, SessionWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Why a write did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A newer lease holder owns the session.
    #[error("session fenced: another node took it over")]
    Fenced,
    /// The session no longer exists.
    #[error("session deleted")]
    Missing,
    /// The write does not continue the stored log (a bug or a lost incarnation).
    #[error("seq gap: the stored log ends at {0}")]
    Gap(u64),
    /// The store stayed unreachable past the deadline, or the writer is shut down.
    #[error("persistence failed: {0}")]
    Unavailable(String),
}

/// Called once with the fate of a write, on the writer's task: keep it short (send
/// on a channel, cast to an actor).
pub type OnCommit = Box<dyn FnOnce(Result<u64, WriteError>) + Send>;

enum WriteRequest {
    Write {
        write: Box<SessionWrite>,
        done: OnCommit,
    },
    /// Answered once everything submitted before it is committed (or failed).
    Barrier(oneshot::Sender<()>),
}

/// Writer tuning.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Writes waiting for the writer before submitters wait (backpressure).
    pub queue_capacity: usize,
    /// Most writes in one commit.
    pub max_batch: usize,
    /// How long a failing commit is retried before its writes fail.
    pub persist_deadline: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_batch: 512,
            // Below the session call timeout (30 s), so a caller waiting on a commit
            // hears `unavailable` (nothing stored) rather than an ambiguous timeout.
            persist_deadline: Duration::from_secs(20),
        }
    }
}

/// Handle to the writer task; cheap to clone. The task ends, after committing what
/// is queued, when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriteRequest>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Arc<dyn SessionStore>, config: WriterConfig) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let task = tokio::spawn(run(store, config, rx));
        (Self { tx }, task)
    }

    /// Queues a write; waits while the queue is full. `done` learns its fate.
    pub async fn submit(&self, write: SessionWrite, done: OnCommit) {
        if let Err(mpsc::error::SendError(WriteRequest::Write { done, .. })) = self
            .tx
            .send(WriteRequest::Write {
                write: Box::new(write),
                done,
            })
            .await
        {
            done(Err(WriteError::Unavailable("writer stopped".into())));
        }
    }

    /// Resolves once everything submitted before this call is committed or failed.
    pub async fn flush(&self) -> impl std::future::Future<Output = ()> + use<> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(WriteRequest::Barrier(tx)).await.is_ok();
        async move {
            if sent {
                let _ = rx.await;
            }
        }
    }

    /// Queues a write and waits until it is committed (or failed).
    pub async fn commit(&self, write: SessionWrite) -> Result<u64, WriteError> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            write,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )
        .await;
        rx.await
            .unwrap_or_else(|_| Err(WriteError::Unavailable("writer stopped".into())))
    }
}

/// Sessions whose write failed for good, by (tenant, session, fence): the writes
/// queued behind the failed one must not commit either, or a later meta write could
/// record a run as completed with one of its messages missing. Entries are dropped
/// after [`POISON_TTL`]: by then the session actor has stopped and a new incarnation
/// writes with a new fence.
#[derive(Default)]
struct Poisoned(
    std::collections::HashMap<
        (sessiond_store::TenantId, sessiond_store::SessionId, u64),
        (WriteError, tokio::time::Instant),
    >,
);

/// How long a failed (session, fence) refuses further writes.
const POISON_TTL: Duration = Duration::from_secs(600);

impl Poisoned {
    fn key(w: &SessionWrite) -> (sessiond_store::TenantId, sessiond_store::SessionId, u64) {
        (w.tenant.clone(), w.session, w.fence)
    }

    fn check(&self, w: &SessionWrite) -> Option<WriteError> {
        self.0.get(&Self::key(w)).map(|(e, _)| e.clone())
    }

    fn record(&mut self, w: &SessionWrite, e: &WriteError) {
        self.0
            .insert(Self::key(w), (e.clone(), tokio::time::Instant::now()));
    }

    fn prune(&mut self) {
        if !self.0.is_empty() {
            self.0.retain(|_, (_, at)| at.elapsed() < POISON_TTL);
        }
    }
}

async fn run(
    store: Arc<dyn SessionStore>,
    config: WriterConfig,
    mut rx: mpsc::Receiver<WriteRequest>,
) {
    let mut batch = Vec::with_capacity(config.max_batch);
    let mut poisoned = Poisoned::default();
    while rx.recv_many(&mut batch, config.max_batch).await > 0 {
        poisoned.prune();
        let mut writes = Vec::with_capacity(batch.len());
        let mut dones = Vec::with_capacity(batch.len());
        let mut barriers = Vec::new();
        for req in batch.drain(..) {
            match req {
                WriteRequest::Write { write, done } => match poisoned.check(&write) {
                    Some(e) => done(Err(e)),
                    None => {
                        writes.push(*write);
                        dones.push(done);
                    }
                },
                WriteRequest::Barrier(tx) => barriers.push(tx),
            }
        }
        if !writes.is_empty() {
            metrics::histogram!("sessiond_writer_batch_writes").record(writes.len() as f64);
            let started = std::time::Instant::now();
            let results = commit_with_retry(&*store, &writes, config.persist_deadline).await;
            metrics::histogram!("sessiond_writer_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            for (w, r) in writes.iter().zip(&results) {
                if let Err(e) = r {
                    poisoned.record(w, e);
                    let reason = match e {
                        WriteError::Fenced => "fenced",
                        WriteError::Missing => "missing",
                        WriteError::Gap(_) => "gap",
                        WriteError::Unavailable(_) => "unavailable",
                    };
                    metrics::counter!("sessiond_writer_failed_writes_total", "reason" => reason)
                        .increment(1);
                }
            }
            for (done, result) in dones.into_iter().zip(results) {
                done(result);
            }
        }
        for b in barriers {
            let _ = b.send(());
        }
    }
}

/// Pauses between attempts of a failing commit: 20 ms doubling to 2 s, for as long
/// as the persist deadline allows.
const COMMIT_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(20))
    .with_max_delay(Duration::from_secs(2))
    .without_max_times();

async fn commit_with_retry(
    store: &dyn SessionStore,
    writes: &[SessionWrite],
    deadline: Duration,
) -> Vec<Result<u64, WriteError>> {
    match retry_until(|| store.commit(writes), deadline, writes.len()).await {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|o| match o {
                CommitOutcome::Committed { last_seq } => Ok(last_seq),
                CommitOutcome::Fenced => Err(WriteError::Fenced),
                CommitOutcome::Missing => Err(WriteError::Missing),
                CommitOutcome::Gap { last_seq } => Err(WriteError::Gap(last_seq)),
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, writes = writes.len(), "persistence failed");
            let err = WriteError::Unavailable(e.to_string());
            writes.iter().map(|_| Err(err.clone())).collect()
        }
    }
}

/// Runs `commit` until it answers, pausing [`COMMIT_BACKOFF`] between attempts; the
/// error of the last attempt once the next pause would end past `deadline`.
async fn retry_until<T, F, Fut>(commit: F, deadline: Duration, writes: usize) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    commit
        .retry(COMMIT_BACKOFF)
        .sleep(tokio::time::sleep)
        .adjust(move |_, pause| pause.filter(|p| tokio::time::Instant::now() + *p < give_up))
        .notify(|e, _| {
            tracing::warn!(error = %e, writes, "commit failed, retrying");
            metrics::counter!("sessiond_writer_commit_retries_total").increment(1);
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::backend::memory::memory;
    use sessiond_store::testing::conformance::{fresh_tenant, msg, new_meta};
    use sessiond_store::{LeaseGrant, NodeId, Role};

    #[tokio::test]
    async fn commits_in_order_and_reports_outcomes() {
        let b = memory();
        let t = fresh_tenant();
        let meta = new_meta(&t, "p", None);
        b.sessions.create_session(&meta).await.unwrap();
        let LeaseGrant::Granted { fence } = b
            .leases
            .acquire(
                &t,
                meta.id,
                &NodeId::new("n").unwrap(),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        let (writer, task) = Writer::spawn(b.sessions.clone(), WriterConfig::default());
        let w = |seq, fence| SessionWrite {
            tenant: t.clone(),
            session: meta.id,
            fence,
            messages: vec![msg(seq, Role::User, "x")],
            meta: None,
            archive: None,
            idempotency: None,
        };
        let mut waits = vec![];
        for seq in 1..=50 {
            let (tx, rx) = oneshot::channel();
            writer
                .submit(w(seq, fence), Box::new(move |r| drop(tx.send(r))))
                .await;
            waits.push(rx);
        }
        for (i, rx) in waits.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), Ok(i as u64 + 1));
        }
        assert_eq!(
            writer.commit(w(51, fence + 1)).await,
            Err(WriteError::Fenced)
        );
        assert_eq!(writer.commit(w(60, fence)).await, Err(WriteError::Gap(50)));
        // Behind a failed write, the session's writes with that fence fail too, even
        // one the store would accept: nothing lands after a hole.
        assert_eq!(writer.commit(w(51, fence)).await, Err(WriteError::Gap(50)));
        drop(writer);
        task.await.unwrap();
        let log = b.sessions.read_log(&t, meta.id, 0, 100).await.unwrap();
        assert_eq!(log.len(), 50, "seq 51 was refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_commit_is_retried_with_backoff_until_the_deadline() {
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let failed: StoreResult<()> = retry_until(
            || async {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(sessiond_store::StoreError::Unavailable("down".into()))
            },
            Duration::from_secs(5),
            1,
        )
        .await;
        assert!(failed.is_err());
        // Pauses of 20, 40, 80, 160, 320, 640, 1280 and 2000 ms end at 4.54 s; the
        // next 2 s one would end past the deadline, so the ninth attempt is the last.
        assert_eq!(attempts.into_inner(), 9);
        let waited = started.elapsed().as_millis();
        assert!((4530..=4550).contains(&waited), "{waited} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_that_recovers_answers() {
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let answer = retry_until(
            || async {
                match attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                    0..=2 => Err(sessiond_store::StoreError::Unavailable("down".into())),
                    _ => Ok(7),
                }
            },
            Duration::from_secs(5),
            1,
        )
        .await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(attempts.into_inner(), 4);
        let waited = started.elapsed().as_millis();
        assert!(
            (139..=141).contains(&waited),
            "20 + 40 + 80 ms, not {waited}"
        );
    }
}
