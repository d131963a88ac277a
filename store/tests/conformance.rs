//! Runs the conformance suites against every backend.

use sessiond_store::backend::memory::memory;
use sessiond_store::backend::sqlite::open_sqlite;
use sessiond_store::testing::conformance::*;

#[tokio::test]
async fn memory_session_store() {
    session_store_suite(&memory()).await;
}

#[tokio::test]
async fn memory_session_lifecycle() {
    session_lifecycle_suite(&memory()).await;
}

#[tokio::test]
async fn memory_lease_store() {
    lease_store_suite(&memory()).await;
}

#[tokio::test]
async fn memory_event_bus() {
    event_bus_suite(&memory()).await;
}

#[tokio::test]
async fn memory_node_registry() {
    node_registry_suite(&memory()).await;
}

async fn sqlite() -> (tempfile::TempDir, sessiond_store::Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = open_sqlite(&dir.path().join("sessiond.db"))
        .await
        .expect("open sqlite");
    (dir, backend)
}

#[tokio::test]
async fn sqlite_session_store() {
    let (_dir, b) = sqlite().await;
    session_store_suite(&b).await;
}

#[tokio::test]
async fn sqlite_session_lifecycle() {
    let (_dir, b) = sqlite().await;
    session_lifecycle_suite(&b).await;
}

#[tokio::test]
async fn sqlite_lease_store() {
    let (_dir, b) = sqlite().await;
    lease_store_suite(&b).await;
}

#[tokio::test]
async fn sqlite_event_bus() {
    let (_dir, b) = sqlite().await;
    event_bus_suite(&b).await;
}

#[tokio::test]
async fn sqlite_node_registry() {
    let (_dir, b) = sqlite().await;
    node_registry_suite(&b).await;
}

async fn redis() -> (
    sessiond_store::testing::redis_server::RedisServer,
    sessiond_store::Backend,
) {
    let server = sessiond_store::testing::redis_server::RedisServer::start();
    let backend = sessiond_store::backend::redis::connect_redis(&server.url())
        .await
        .expect("connect redis");
    (server, backend)
}

#[tokio::test]
async fn redis_session_store() {
    let (_server, b) = redis().await;
    session_store_suite(&b).await;
}

#[tokio::test]
async fn redis_session_lifecycle() {
    let (_server, b) = redis().await;
    session_lifecycle_suite(&b).await;
}

#[tokio::test]
async fn redis_lease_store() {
    let (_server, b) = redis().await;
    lease_store_suite(&b).await;
}

#[tokio::test]
async fn redis_event_bus() {
    let (_server, b) = redis().await;
    event_bus_suite(&b).await;
}

#[tokio::test]
async fn redis_node_registry() {
    let (_server, b) = redis().await;
    node_registry_suite(&b).await;
}
