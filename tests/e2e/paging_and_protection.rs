//! History paged backwards (`before_seq`, `tail`) and protected sessions, on
//! SQLite and Redis, through real processes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn history_pages_backwards_and_by_tail_on_every_store() {
    for (store, _redis, _dir) in stores() {
        let server = Server::start(&store);
        let api = server.api();
        let id = api
            .create("demo", json!({"driver_options": {"chunks": 3}}))
            .await;
        for p in ["one", "two", "three"] {
            api.send(&id, p).await;
        }
        // Three runs of a prompt and three answers: seqs 1..=12.
        api.wait_settled(&id, 12).await;
        let page = |q: &str| {
            let path = format!("/v1/sessions/{id}/messages?{q}");
            let api = api.clone();
            async move { api.fetch(&path).await }
        };
        assert_eq!(seqs(&page("tail=5").await), vec![8, 9, 10, 11, 12]);
        assert_eq!(seqs(&page("tail=100").await), (1..=12).collect::<Vec<_>>());
        assert_eq!(seqs(&page("before_seq=8&limit=3").await), vec![5, 6, 7]);
        assert_eq!(seqs(&page("before_seq=3&limit=10").await), vec![1, 2]);
        assert!(seqs(&page("before_seq=1&limit=10").await).is_empty());
        // Past the end: the last `limit` messages.
        assert_eq!(seqs(&page("before_seq=99&limit=2").await), vec![11, 12]);
        // Scrolling up from the tail reaches the start, every message once.
        let mut shown = seqs(&page("tail=4").await);
        loop {
            let older = seqs(&page(&format!("before_seq={}&limit=4", shown[0])).await);
            if older.is_empty() {
                break;
            }
            shown.splice(0..0, older);
        }
        assert_eq!(shown, (1..=12).collect::<Vec<_>>());

        // After a compaction the live log starts later; backwards pages stop there.
        let report = api
            .ok(
                &format!("/v1/sessions/{id}/compact"),
                json!({"keep_last": 5}),
                200,
            )
            .await;
        assert_eq!(report["archived"], 7);
        assert_eq!(seqs(&page("before_seq=10&limit=4").await), vec![8, 9]);
        assert!(seqs(&page("before_seq=8&limit=4").await).is_empty());
        assert_eq!(seqs(&page("tail=3").await), vec![10, 11, 12]);

        // The clashes and bounds are refused, naming what is wrong.
        for q in [
            "tail=2&after_seq=1",
            "tail=2&before_seq=5",
            "tail=2&limit=3",
            "after_seq=1&before_seq=5",
            "tail=0",
            "tail=1001",
            "before_seq=5&limit=0",
            "before_seq=-1",
        ] {
            api.get(&format!("/v1/sessions/{id}/messages?{q}"))
                .await
                .assert_error(400, "invalid_request");
        }
        // An unknown session is still 404 with any paging.
        let missing = "01a1fca6-b0a9-735c-9e7a-bea7febb46e1";
        for q in ["tail=3", "before_seq=4"] {
            api.get(&format!("/v1/sessions/{missing}/messages?{q}"))
                .await
                .assert_error(404, "not_found");
        }
    }
}

#[tokio::test]
async fn protected_sessions_refuse_delete_and_reset_until_patched_on_every_store() {
    for (store, _redis, _dir) in stores() {
        let mut server = Server::start(&store);
        let api = server.api();
        // `main` is protected by default; another key is not unless asked.
        let main = api.create("demo", json!({"key": "main"})).await;
        assert_eq!(api.session(&main).await["protected"], true);
        let plain = api.create("demo", json!({"key": "side"})).await;
        assert_eq!(api.session(&plain).await["protected"], false);
        let asked = api.create("demo", json!({"protected": true})).await;
        assert_eq!(api.session(&asked).await["protected"], true);
        let opted_out = api
            .create("other", json!({"key": "main", "protected": false}))
            .await;
        assert_eq!(api.session(&opted_out).await["protected"], false);

        api.send(&main, "hi").await;
        api.wait_settled(&main, 2).await;
        for id in [&main, &asked] {
            let reset = api
                .post(&format!("/v1/sessions/{id}/reset"), json!({}))
                .await;
            reset.assert_error(409, "protected");
            assert!(
                reset.body["error"]["error_id"].is_string(),
                "{:?}",
                reset.body
            );
            api.raw(Method::DELETE, &format!("/v1/sessions/{id}"), None)
                .await
                .assert_error(409, "protected");
        }
        // Nothing was touched.
        assert_eq!(api.history(&main).await.len(), 2);
        // Durable: still protected after a crash.
        server.restart();
        let api = server.api();
        api.raw(Method::DELETE, &format!("/v1/sessions/{main}"), None)
            .await
            .assert_error(409, "protected");

        // A patch lifts it; then reset and delete work.
        let lifted = api
            .raw(
                Method::PATCH,
                &format!("/v1/sessions/{main}"),
                Some(&json!({"protected": false}).to_string()),
            )
            .await;
        assert_eq!(lifted.status, 200, "{:?}", lifted.body);
        assert_eq!(lifted.body["session"]["protected"], false);
        let reset = api
            .ok(&format!("/v1/sessions/{main}/reset"), json!({}), 200)
            .await;
        assert_eq!(reset["session"]["archived_upto"], 2);
        let deleted = api
            .raw(Method::DELETE, &format!("/v1/sessions/{main}"), None)
            .await;
        assert_eq!(deleted.status, 204, "{:?}", deleted.body);
        // And a patch sets it again.
        let again = api
            .raw(
                Method::PATCH,
                &format!("/v1/sessions/{plain}"),
                Some(&json!({"protected": true}).to_string()),
            )
            .await;
        assert_eq!(again.body["session"]["protected"], true);
        api.raw(Method::DELETE, &format!("/v1/sessions/{plain}"), None)
            .await
            .assert_error(409, "protected");
    }
}
