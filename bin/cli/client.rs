//! A small HTTP client of the API, built on the API model types.

use anyhow::{Context, anyhow};
use clap::Args;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sessiond_runtime::api::model::ErrorBody;

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
}

impl ServerArgs {
    /// A client of this server.
    pub(crate) fn client(&self) -> anyhow::Result<ApiClient> {
        ApiClient::new(&self.server)
    }
}

/// Talks to one server.
#[derive(Debug, Clone)]
pub(crate) struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub(crate) fn new(base: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(
                "server URL must start with http:// or https:// (got '{base}')"
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self { base, http })
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// Sends a request; a non-2xx answer becomes a readable error.
    async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let resp = req
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        check(resp).await
    }

    /// Sends a request and decodes a JSON answer, or turns the error shape into a
    /// readable error.
    pub(crate) async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> anyhow::Result<T> {
        self.send(req)
            .await?
            .json()
            .await
            .context("unexpected answer from the server")
    }

    /// Sends a request whose answer has no body (204).
    pub(crate) async fn no_content(&self, req: RequestBuilder) -> anyhow::Result<()> {
        self.send(req).await.map(drop)
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    /// A POST without a body (pause, resume, reset).
    pub(crate) async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.json(self.request(Method::POST, path)).await
    }

    /// A PUT with a JSON body and a JSON answer.
    pub(crate) async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    /// A PATCH with a JSON body and a JSON answer.
    pub(crate) async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::PATCH, path).json(body))
            .await
    }
}

/// Turns a non-2xx answer into an error carrying the API's code and message.
pub(crate) async fn check(resp: Response) -> anyhow::Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(anyhow!(
            "{} ({}): {}",
            body.error.code,
            status.as_u16(),
            body.error.message
        )),
        Err(_) => Err(anyhow!("server answered {status}: {text}")),
    }
}
