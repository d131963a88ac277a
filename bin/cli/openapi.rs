//! `sessiond openapi`: prints the API's OpenAPI document, the same text the server
//! serves at `GET /v1/openapi.json` and docs/openapi.json holds. Regenerate that
//! file with `cargo run --locked -- openapi > docs/openapi.json`.

use std::io::Write;

/// Prints the document to stdout.
pub(crate) fn run() -> anyhow::Result<()> {
    let text = sessiond_runtime::api::openapi::render()?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
