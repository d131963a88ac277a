//! `sessiond sessions tail`: follows a session's events, resuming after a drop
//! (the client's event stream reconnects with `Last-Event-ID`).

use sessiond_client::{Client, Event};

use super::sessions::print_message;

/// Follows the SSE stream; on a dropped connection, resumes from the last seq seen.
/// With `until_idle_after`, returns once the session settled after that seq.
pub(crate) async fn tail(
    api: &Client,
    id: &str,
    after_seq: Option<u64>,
    json: bool,
    until_idle_after: Option<u64>,
) -> anyhow::Result<()> {
    let mut events = api.events(id, after_seq);
    // Seq at which the session was last reported not running.
    let mut settled_at: Option<u64> = None;
    let done = |seen: Option<u64>, settled: Option<u64>| match (until_idle_after, settled) {
        (Some(min), Some(at)) => at >= min && seen.unwrap_or(0) >= at,
        _ => false,
    };
    while let Some(event) = events.next().await {
        match event? {
            Event::Message(m) => print_message(&m, json)?,
            Event::Status(s) => {
                if json {
                    println!("{}", serde_json::json!({"event": "status", "data": s}));
                } else {
                    println!("-- status: {} (last seq {})", s.status, s.last_seq);
                }
                settled_at = (s.status != "running").then_some(s.last_seq);
            }
            Event::Error(body) => eprintln!(
                "server error: {}; resuming after seq {}",
                serde_json::to_string(&body)?,
                events.last_seq().unwrap_or(0)
            ),
            Event::Lagged(_) | Event::Stalled(_) => {}
        }
        if done(events.last_seq(), settled_at) {
            return Ok(());
        }
    }
    Ok(())
}
