//! A minimal chat against a running sessiond: create (or find) a session, send a
//! prompt, print the answer as it is committed, stop when the run ends.
//!
//! ```text
//! cargo run -p sessiond-client --example chat -- http://127.0.0.1:7411 "hello"
//! ```

use sessiond_client::model::CreateSessionRequest;
use sessiond_client::ops::{History, PatchSession};
use sessiond_client::{Client, ErrorCode, Event};

#[tokio::main]
async fn main() -> Result<(), sessiond_client::Error> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7411".into());
    let prompt = args.next().unwrap_or_else(|| "hello".into());
    let client = Client::new(&server)?;

    // The key `main` names the project's main session: reuse it when it exists.
    let session = match client.session_by_key("demo", "main").await {
        Ok(found) => found.session,
        Err(e) if e.code() == Some(ErrorCode::NotFound) => {
            let req = CreateSessionRequest {
                key: Some("main".into()),
                label: Some("chat example".into()),
                ..CreateSessionRequest::default()
            };
            client.create_session("demo", &req).await?.session
        }
        Err(e) => return Err(e),
    };
    let id = session.id;

    // The last few messages, as a chat view shows them on open.
    let recent = History {
        tail: Some(5),
        ..History::default()
    };
    for m in client.history(&id, &recent).await?.messages {
        println!("#{} {}: {}", m.seq, m.role, m.content);
    }

    // Follow from the current end, then send: nothing is missed in between, and a
    // dropped connection resumes where it stopped.
    let mut events = client.events(&id, Some(session.last_seq));
    let receipt = client.send(&id, prompt).await?;
    println!(
        "-- sent as #{} (run {})",
        receipt.message_seq, receipt.run_id
    );
    while let Some(event) = events.next().await {
        match event? {
            Event::Message(m) => println!("#{} {}: {}", m.seq, m.role, m.content),
            Event::Status(s) if s.status != "running" && s.last_seq > receipt.message_seq => {
                println!("-- {} ({} tokens out)", s.status, s.usage.output_tokens);
                break;
            }
            _ => {}
        }
    }

    // Settings are a typed patch; the main session is protected from deletion.
    let labelled = PatchSession {
        label: Some("chat example (used)".into()),
        ..PatchSession::default()
    };
    let after = client.patch(&id, &labelled).await?;
    println!("-- protected: {}", after.session.protected);
    Ok(())
}
