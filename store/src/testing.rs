//! Test support for this crate and the crates above it (feature `testing`).
//!
//! # Layout
//! - [`redis_server`]: starts and stops real redis-server processes on free ports
//! - [`redis_cluster`]: a 3-master Redis Cluster on loopback, for cluster runs
//! - [`conformance`]: the suite every backend of every store trait must pass
//! - [`wait_until`]: polls a condition up to a deadline (tests never sleep to sync)

pub mod conformance;
pub mod redis_cluster;
pub mod redis_server;

use std::future::Future;
use std::time::Duration;

/// Polls `cond` every few milliseconds until it returns `Some`, or panics with `what`
/// after `deadline`.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        if tokio::time::Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
