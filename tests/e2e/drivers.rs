//! The `openai` and `acp` drivers behind the HTTP API: profiles from `sessiond.toml`,
//! a fake OpenAI-compatible server (real HTTP and SSE), the Node.js ACP test agent
//! (`drivers/tests/fixtures/acp-agent`, installed with `npm ci` before the tests).

mod acp;
mod openai;

#[path = "../../drivers/tests/support/openai_server.rs"]
#[allow(dead_code)] // Shared with the driver tests, which use all of it.
mod openai_server;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use openai_server::{FakeServer, Reply, content, finish, reasoning, usage};
use serde_json::{Value, json};

use crate::harness::*;

/// Waits that include starting a Node.js agent on a loaded machine.
const NODE_DEADLINE: Duration = Duration::from_secs(60);

/// The test agent's `agent.mjs`, as an absolute path; panics with what to do when
/// `node` or the agent's packages are missing.
fn acp_agent() -> String {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the acp tests need `node` (Node.js 20+) in PATH"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/tests/fixtures/acp-agent");
    assert!(
        dir.join("node_modules/@agentclientprotocol/sdk").is_dir(),
        "the ACP test agent is not installed: run `npm ci` in {}",
        dir.display()
    );
    dir.join("agent.mjs").display().to_string()
}

/// A TOML string (a JSON string is one, for the paths and URLs used here).
fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

/// `[drivers.fake]`: the fake server, model `test-model` priced at $2 / $10 per
/// million input / output tokens.
fn openai_config(base_url: &str, max_retries: u32) -> String {
    format!(
        r#"
[drivers.fake]
kind = "openai"
base_url = {base_url}
model = "test-model"
max_retries = {max_retries}
retry_base_ms = 10

[drivers.fake.prices.test-model]
input_per_mtok = 2.0
output_per_mtok = 10.0
"#,
        base_url = quoted(base_url),
    )
}

/// `[drivers.agent]`: the ACP test agent under `policy`.
fn acp_config(policy: &str) -> String {
    format!(
        r#"
[drivers.agent]
kind = "acp"
command = "node"
args = [{agent}]
permission_policy = "{policy}"
cancel_grace_ms = 1000
startup_timeout_secs = 60
"#,
        agent = quoted(&acp_agent()),
    )
}

/// Waits until the run `run_id` has an outcome and the session left running.
async fn wait_run_end(api: &Api, id: &str, run_id: &Value, within: Duration) -> Value {
    wait_until(&format!("run {run_id} ended"), within, || async {
        let s = api.session(id).await;
        let ended = s["last_run"]["run_id"] == *run_id
            && !s["last_run"]["outcome"].is_null()
            && s["status"] != "running";
        ended.then_some(s)
    })
    .await
}

/// `(role, content)` of each message.
fn roles_and_texts(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

/// The data of SSE message events.
fn data(events: &[Sse]) -> Vec<Value> {
    events.iter().map(|e| e.data.clone()).collect()
}

fn approx(actual: &Value, expected: f64) -> bool {
    actual
        .as_f64()
        .is_some_and(|a| (a - expected).abs() < 1e-12)
}
