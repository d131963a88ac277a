//! Serving the router on a listener until a shutdown future resolves.

use std::future::Future;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api::{AppState, router};
use crate::node::Node;

/// Serves the API for `node` on `listener` until `shutdown` resolves, then stops
/// the node (sessions release their leases, the writer flushes).
pub async fn serve(
    listener: TcpListener,
    node: Node,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(node.clone());
    let sockets = state.sockets.clone();
    let app = router(state);
    // Event streams never end on their own: end them as the stop begins, or the
    // graceful shutdown would wait for them forever.
    let stopping = node.stopping();
    let signal = async move {
        shutdown.await;
        stopping.cancel();
    };
    // Event streams are many small writes: with Nagle's algorithm on, each one can
    // wait for the client's delayed ACK (~40 ms). Measured with `sessiond bench`
    // (BENCHMARKS.md): run p99 went from ~48 ms to the figures recorded there.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await;
    // The sockets saw `stopping` too and are sending their close frames; each
    // takes at most its close grace, so this wait is a backstop.
    sockets.close();
    if tokio::time::timeout(SOCKETS_GRACE, sockets.wait())
        .await
        .is_err()
    {
        tracing::warn!(open = sockets.len(), "websockets still open at shutdown");
    }
    node.shutdown().await;
    result
}

/// Longest wait for open WebSockets to close once the HTTP server stopped.
const SOCKETS_GRACE: Duration = Duration::from_secs(5);
