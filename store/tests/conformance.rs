//! Runs the conformance suites against every backend.

use sessiond_store::backend::memory::memory;
use sessiond_store::testing::conformance::*;

#[tokio::test]
async fn memory_session_store() {
    session_store_suite(&memory()).await;
}

#[tokio::test]
async fn memory_lease_store() {
    lease_store_suite(&memory()).await;
}

#[tokio::test]
async fn memory_event_bus() {
    event_bus_suite(&memory()).await;
}
