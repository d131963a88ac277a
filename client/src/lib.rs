//! sessiond-client: the Rust SDK of sessiond. See also `client/README.md` and
//! `client/examples/chat.rs`.
//!
//! It holds the one definition of the API's wire format, which the server's
//! handlers use too, and an async client over it:
//!
//! ```no_run
//! use sessiond_client::{Client, model::CreateSessionRequest};
//!
//! # async fn demo() -> Result<(), sessiond_client::Error> {
//! let client = Client::new("http://127.0.0.1:7411")?;
//! let created = client
//!     .create_session("demo", &CreateSessionRequest { key: Some("main".into()), ..Default::default() })
//!     .await?;
//! let id = created.session.id;
//! let receipt = client.send(&id, "hello").await?; // durable once this returns
//! let mut events = client.events(&id, Some(0)); // resumes on its own after a disconnect
//! while let Some(event) = events.next().await {
//!     println!("{:?}", event?);
//! #   break;
//! }
//! # let _ = receipt;
//! # Ok(())
//! # }
//! ```
//!
//! Every operation on a session is a type in [`ops`] implementing [`Operation`]:
//! its request fields, its reply type, its route, its deadline, whether it changes
//! the session and whether sending it again is safe. [`Client::call`] runs any of
//! them over HTTP; [`ws::SessionSocket::call`] runs any of them over the session's
//! WebSocket.
//!
//! # Layout
//! - [`model`]: the JSON shapes of sessions, messages, events, lists and the node
//! - [`ops`]: one type per session operation, and the [`Operation`] trait
//! - [`error`]: stable error codes, the error body, the client's error type
//! - [`http`]: how an operation becomes an HTTP request
//! - [`client`]: [`Client`], the HTTP client
//! - [`events`]: a session's SSE stream that resumes with `Last-Event-ID`
//! - [`ws`]: a session's WebSocket: operations and events on one connection

pub mod client;
pub mod error;
pub mod events;
pub mod http;
pub mod model;
pub mod ops;
pub mod ws;

pub use client::Client;
pub use error::{Error, ErrorCode, Result};
pub use events::{Event, EventStream};
pub use ops::{Deadline, Operation};
