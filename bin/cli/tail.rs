//! `sessiond sessions tail`: follows a session's events, resuming after a drop.

use anyhow::anyhow;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use sessiond_runtime::api::model::{MessageView, StatusView};

use super::client::{ApiClient, check};
use super::sessions::print_message;

/// Follows the SSE stream; on a dropped connection, resumes from the last seq seen.
/// With `until_idle_after`, returns once the session settled after that seq.
pub(crate) async fn tail(
    api: &ApiClient,
    id: &str,
    after_seq: Option<u64>,
    json: bool,
    until_idle_after: Option<u64>,
) -> anyhow::Result<()> {
    let mut last_seq = after_seq;
    let mut failures = 0u32;
    loop {
        let mut req = api
            .request(reqwest::Method::GET, &format!("/v1/sessions/{id}/events"))
            .header("accept", "text/event-stream");
        if let Some(seq) = last_seq {
            req = req.header("last-event-id", seq.to_string());
        }
        let resp = match req.send().await {
            Ok(r) => check(r).await?,
            Err(e) if failures < 30 => {
                failures += 1;
                eprintln!("connection failed ({e}); retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(anyhow!("cannot reach the server: {e}")),
        };
        failures = 0;
        let mut events = resp.bytes_stream().eventsource();
        // Seq at which the session was last reported not running.
        let mut settled_at: Option<u64> = None;
        let done = |seen: Option<u64>, settled: Option<u64>| match (until_idle_after, settled) {
            (Some(min), Some(at)) => at >= min && seen.unwrap_or(0) >= at,
            _ => false,
        };
        while let Some(ev) = events.next().await {
            let Ok(ev) = ev else { break };
            match ev.event.as_str() {
                "message" => {
                    let m: MessageView = serde_json::from_str(&ev.data)?;
                    last_seq = Some(m.seq);
                    print_message(&m, json)?;
                    if done(last_seq, settled_at) {
                        return Ok(());
                    }
                }
                "status" => {
                    let s: StatusView = serde_json::from_str(&ev.data)?;
                    if json {
                        println!("{}", serde_json::json!({"event": "status", "data": s}));
                    } else {
                        println!("-- status: {} (last seq {})", s.status, s.last_seq);
                    }
                    settled_at = (s.status != "running").then_some(s.last_seq);
                    if done(last_seq, settled_at) {
                        return Ok(());
                    }
                }
                "error" => eprintln!("server error: {}", ev.data),
                _ => {}
            }
        }
        eprintln!("stream ended; resuming after seq {}", last_seq.unwrap_or(0));
    }
}
