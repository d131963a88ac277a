//! Abort of a hanging run: answered within a second, the session leaves running,
//! and the prompt queued behind it runs.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn abort_ends_a_hanging_run_and_the_queued_prompt_runs() {
    for (store, _redis, _dir) in stores() {
        let server = Server::start(&store);
        let api = server.api();
        let id = api
            .create("demo", json!({"driver_options": {"hang": true}}))
            .await;
        let first = api.send(&id, "one").await;
        api.wait_status(&id, "running").await;
        let second = api.send(&id, "two").await;
        assert_eq!(second["queued"], true);

        // The deadline: the abort is answered within 1 s.
        let abort = tokio::time::timeout(
            Duration::from_secs(1),
            api.post(&format!("/v1/sessions/{id}/abort"), json!({})),
        )
        .await
        .expect("abort answered within 1 s");
        assert_eq!(abort.status, 200, "{:?}", abort.body);
        assert_eq!(abort.body["status"], "aborted");
        assert_eq!(abort.body["run_id"], first["run_id"]);

        // The queued prompt runs next (it hangs too, by the session's options).
        let s = wait_until("second run active", DEADLINE, || async {
            let s = api.session(&id).await;
            (s["last_run"]["run_id"] == second["run_id"] && s["status"] == "running").then_some(s)
        })
        .await;
        assert!(s["last_run"]["outcome"].is_null());
        let history = api.history(&id).await;
        assert_eq!(history.len(), 2, "two prompts, no output: {history:?}");

        // Abort by run id; a stale run id finds nothing.
        let stale = api
            .post(
                &format!("/v1/sessions/{id}/abort"),
                json!({"run_id": first["run_id"]}),
            )
            .await;
        assert_eq!(stale.body["status"], "no-active-run");
        let abort = api
            .post(
                &format!("/v1/sessions/{id}/abort"),
                json!({"run_id": second["run_id"]}),
            )
            .await;
        assert_eq!(abort.body["status"], "aborted");
        let s = api.session(&id).await;
        assert_eq!(s["status"], "idle");
        assert_eq!(s["last_run"]["outcome"], "aborted");
        // Nothing to abort now; an empty body is fine.
        let none = api
            .raw(
                reqwest::Method::POST,
                &format!("/v1/sessions/{id}/abort"),
                None,
            )
            .await;
        assert_eq!(none.body["status"], "no-active-run");
    }
}
