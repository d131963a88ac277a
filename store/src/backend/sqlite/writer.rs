//! The one writer thread: owns the write connection and runs every mutation, batched.
//!
//! The thread blocks for a first request, takes everything else already queued and
//! runs the lot in one `BEGIN IMMEDIATE ... COMMIT`: one fsync for the whole batch
//! (group commit). Each request runs inside its own savepoint, so an error or a panic
//! rolls back that request alone; its caller gets the error, the others commit. Every
//! caller is answered only after COMMIT returned, so an answer means durable.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
#[cfg(test)]
use tokio::sync::watch;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, StoreError};

/// Requests waiting for the writer; callers wait (backpressure) when it is full. Also
/// the largest batch, which bounds how long one transaction holds the write lock.
const QUEUE_CAPACITY: usize = 1024;

/// A queued request, type-erased so one channel carries every kind of mutation.
trait Job: Send {
    /// Runs the request inside its own savepoint and keeps its result. An `Err` means
    /// the savepoint itself failed: the transaction is in doubt and must roll back.
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()>;

    /// Answers the caller once the batch's fate is known; `batch_error` is set when the
    /// whole transaction rolled back.
    fn answer(self: Box<Self>, batch_error: Option<&str>);
}

struct Pending<T, F> {
    op: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let Some(op) = self.op.take() else {
            return Ok(());
        };
        conn.execute_batch("SAVEPOINT request")?;
        // The connection stays usable after a panic: statements reset when dropped
        // during unwinding, and the savepoint undoes whatever the request wrote.
        let result = catch_unwind(AssertUnwindSafe(|| op(conn))).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "sqlite write request panicked");
            Err(StoreError::Unavailable(format!(
                "sqlite write request panicked: {what}"
            )))
        });
        if result.is_err() {
            conn.execute_batch("ROLLBACK TO request")?;
        }
        conn.execute_batch("RELEASE request")?;
        self.result = Some(result);
        Ok(())
    }

    fn answer(self: Box<Self>, batch_error: Option<&str>) {
        let result = match (self.result, batch_error) {
            // The request's own error stands even when the batch failed too.
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(StoreError::Unavailable(e.to_owned())),
            (Some(ok), None) => ok,
            (None, None) => Err(StoreError::Unavailable(
                "sqlite writer skipped the request".into(),
            )),
        };
        // A caller that gave up (timeout) no longer listens; the write stands anyway,
        // which the store contract allows (an error leaves the fate unknown).
        let _ = self.reply.send(result);
    }
}

/// Counters of the writer thread.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) batches: AtomicU64,
    pub(super) requests: AtomicU64,
}

/// The async side's handle on the writer thread. Dropping every handle closes the
/// queue: the thread finishes the batch in hand, closes the connection and exits.
pub(super) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
    counters: Arc<Counters>,
    #[cfg(test)]
    exited: watch::Receiver<()>,
}

impl Writer {
    /// Starts the thread on `conn`, which must be configured and migrated.
    pub(super) fn spawn(conn: Connection) -> Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        #[cfg(test)]
        let (exit_tx, exited) = watch::channel(());
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("sessiond-sqlite-writer".into())
            .spawn(move || {
                run(conn, rx, &c);
                // Dropped last: the connection is closed when watchers see the exit.
                #[cfg(test)]
                drop(exit_tx);
            })
            .map_err(|e| StoreError::Unavailable(format!("sqlite: cannot start writer: {e}")))?;
        Ok(Self {
            tx,
            counters,
            #[cfg(test)]
            exited,
        })
    }

    /// Runs `op` on the writer thread in the next batch; answers after COMMIT.
    pub(super) async fn call<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            op: Some(op),
            result: None,
            reply,
        });
        self.tx
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("sqlite writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("sqlite writer dropped the request".into()))?
    }

    /// Batches and requests run so far.
    pub(super) fn counters(&self) -> (u64, u64) {
        (
            self.counters.batches.load(Ordering::Relaxed),
            self.counters.requests.load(Ordering::Relaxed),
        )
    }

    /// Requests queued and not yet taken by the thread.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Changes (to closed) when the thread has exited and closed its connection.
    #[cfg(test)]
    pub(super) fn exited(&self) -> watch::Receiver<()> {
        self.exited.clone()
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, counters: &Counters) {
    let mut batch = Vec::with_capacity(QUEUE_CAPACITY);
    // Blocks for the first request, then takes what else is already queued.
    while rx.blocking_recv_many(&mut batch, QUEUE_CAPACITY) > 0 {
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let failed = match apply(&conn, &mut batch) {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "sqlite batch rolled back");
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Some(format!("sqlite: {e}"))
            }
        };
        for job in batch.drain(..) {
            job.answer(failed.as_deref());
        }
    }
    tracing::debug!("sqlite writer stopped");
}

fn apply(conn: &Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        job.run(conn)?;
    }
    conn.execute_batch("COMMIT")
}
