//! The bot endpoint: Rasa REST shape, built-in intents, and bad input.

use serde_json::json;

use crate::harness::start;

#[tokio::test]
async fn answers_intents_in_the_rasa_shape() {
    let s = start("").await;
    let answer = s.bot("v_bot1", "Hello!").await;
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].recipient_id.as_ref().unwrap().as_str(), "v_bot1");
    assert!(answer[0].text.as_ref().unwrap().contains("demo assistant"));

    let answer = s.bot("v_bot1", "blorp").await;
    assert!(
        answer[0]
            .text
            .as_ref()
            .unwrap()
            .starts_with("Sorry, I didn't get that")
    );

    // The "person" intent carries a handover directive in `custom`.
    let answer = s.bot("v_bot1", "I want to talk to a person").await;
    let directive = answer
        .iter()
        .find_map(|m| m.handover())
        .expect("a handover directive");
    assert_eq!(
        directive.message_to_agent.as_deref(),
        Some("The visitor asked for a person.")
    );

    let (status, body) = s.post("/webhooks/rest/", &json!({})).await;
    assert_eq!(
        (status, body),
        (405, serde_json::Value::Null),
        "the health check is GET only"
    );
    let health: serde_json::Value = s
        .http
        .get(s.url("/webhooks/rest/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
}

#[tokio::test]
async fn malformed_requests_get_400_saying_what_is_wrong() {
    let s = start("").await;
    let (status, body) = s
        .post("/webhooks/rest/webhook", &json!({"message": "hi"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("missing field `sender`"),
        "{body}"
    );

    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": 5, "message": "hi"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("sender"),
        "{body}"
    );

    let r = s
        .http
        .post(s.url("/webhooks/rest/webhook"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");

    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": "v", "message": "   "}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("empty")));

    let long = "x".repeat(baton_protocol::MAX_TEXT_BYTES + 1);
    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": "v", "message": long}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (413, Some("too_large")));
}
