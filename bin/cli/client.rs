//! Where the server is: every client verb takes `--server` and talks to it through
//! `sessiond_client::Client`, the Rust SDK.

use clap::Args;
use sessiond_client::Client;

/// Where the server is; every client command takes it.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The server.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:7411",
        env = "SESSIOND_SERVER"
    )]
    pub(crate) server: String,
    /// Bearer token sent with every request.
    #[arg(long, global = true, env = "SESSIOND_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

impl ServerArgs {
    /// A client of this server.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.server)?;
        Ok(match &self.token {
            Some(t) => client.with_token(t.clone()),
            None => client,
        })
    }
}
