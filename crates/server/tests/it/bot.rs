//! The bot endpoint: the Rasa REST shape, the built-in intents, a Rasa upstream (a small fake
//! Rasa server started by the test), and bad input.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use baton_protocol::bot::{BotMessage, BotRequest};
use baton_protocol::state::ConversationState;
use baton_protocol::ws::{EventBody, Role};
use serde_json::{Value, json};

use crate::harness::start;

#[tokio::test]
async fn answers_intents_in_the_rasa_shape() {
    let s = start("").await;
    let answer = s.rasa("v_bot1", "Hello!").await;
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].recipient_id.as_ref().unwrap().as_str(), "v_bot1");
    assert!(answer[0].text.as_ref().unwrap().contains("demo assistant"));

    let answer = s.rasa("v_bot1", "blorp").await;
    assert!(
        answer[0]
            .text
            .as_ref()
            .unwrap()
            .starts_with("Sorry, I didn't get that")
    );

    // The "person" intent carries a handover directive in `custom`, and the server starts
    // the handover itself, so even a plain Rasa client reaches the queue.
    let answer = s.rasa("v_bot1", "I want to talk to a person").await;
    let directive = answer
        .iter()
        .find_map(|m| m.handover())
        .expect("a handover directive");
    assert_eq!(
        directive.message_to_agent.as_deref(),
        Some("The visitor asked for a person.")
    );
    let conv = s
        .service()
        .store
        .conversation_by_visitor(&"v_bot1".into())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
    let handover = conv.handover.unwrap();
    assert_eq!(
        handover.message_to_agent.as_deref(),
        Some("The visitor asked for a person.")
    );
    assert_eq!(handover.queue, "default");

    let (status, body) = s.post("/webhooks/rest/", &json!({})).await;
    assert_eq!(status, 405, "the health check is GET only");
    assert_eq!(body["error"], "bad_request");
    let health = s.get_json("/webhooks/rest/").await;
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
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");

    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": "v", "message": "   "}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("empty")));

    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": "", "message": "hi"}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    assert!(
        body["message"].as_str().unwrap().contains("empty"),
        "{body}"
    );

    let long = "x".repeat(baton_protocol::MAX_TEXT_BYTES + 1);
    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": "v", "message": long}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (413, Some("too_large")));
}

/// A fake Rasa server: answers by script, counts calls, remembers the last request.
struct FakeRasa {
    url: String,
    calls: Arc<AtomicUsize>,
    last: Arc<std::sync::Mutex<Option<BotRequest>>>,
}

async fn fake_rasa() -> FakeRasa {
    let calls = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(std::sync::Mutex::new(None));
    let (c, l) = (calls.clone(), last.clone());
    let app = axum::Router::new().route(
        "/webhooks/rest/webhook",
        post(move |Json(req): Json<BotRequest>| {
            let (c, l) = (c.clone(), l.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                *l.lock().unwrap() = Some(req.clone());
                let to = req.sender.as_str();
                let answer = match req.message.as_str() {
                    "rich" => json!([
                        {"recipient_id": to, "text": "Pick one", "buttons": [{"title": "Billing", "payload": "/billing"}]},
                        {"recipient_id": to, "image": "https://example.com/a.png"},
                        {"recipient_id": to, "attachment": {"type": "video", "payload": {"src": "v.mp4"}}},
                        {"recipient_id": to, "custom": {"carousel": [1, 2]}}
                    ]),
                    "human" => json!([
                        {"recipient_id": to, "text": "Connecting you."},
                        {"recipient_id": to, "custom": {"type": "handover", "reason": "bot_cannot_handle",
                            "message_to_agent": "Refund for order 1234", "routing": {"queue": "billing"}}}
                    ]),
                    "legacy" => json!([
                        {"recipient_id": to, "custom": {"handoff_host": "http://rasa-agents:5005", "title": "Human"}}
                    ]),
                    "empty" => json!([]),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        json!([{"recipient_id": to, "text": "too late"}])
                    }
                    "boom" => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "boom"}))),
                    other => json!([{"recipient_id": to, "text": format!("echo: {other}")}]),
                };
                (axum::http::StatusCode::OK, Json(answer))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeRasa { url, calls, last }
}

fn upstream_config(url: &str) -> String {
    format!("[bot]\nupstream = \"{url}\"\nupstream_timeout = \"500ms\"\n")
}

#[tokio::test]
async fn a_rasa_upstream_answers_and_its_reply_passes_through_unchanged() {
    let rasa = fake_rasa().await;
    let s = start(&upstream_config(&rasa.url)).await;
    let v = s.visitor().await;
    let answer = s.bot(&v, "rich").await;
    let expected: Vec<BotMessage> = serde_json::from_value(json!([
        {"recipient_id": v.id, "text": "Pick one", "buttons": [{"title": "Billing", "payload": "/billing"}]},
        {"recipient_id": v.id, "image": "https://example.com/a.png"},
        {"recipient_id": v.id, "attachment": {"type": "video", "payload": {"src": "v.mp4"}}},
        {"recipient_id": v.id, "custom": {"carousel": [1, 2]}}
    ]))
    .unwrap();
    assert_eq!(answer, expected);
    // The upstream got the visitor's message as Rasa expects it, without the credential.
    let sent = rasa.last.lock().unwrap().clone().unwrap();
    assert_eq!((sent.sender, sent.message.as_str()), (v.id.clone(), "rich"));
    let sent_json = serde_json::to_string(&*rasa.last.lock().unwrap()).unwrap();
    assert!(
        !sent_json.contains(&v.token),
        "the credential never leaves Baton"
    );

    // Every item is in the transcript, extras included.
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    let events = s.service().events_after(&conv.id, 0, 100).await.unwrap();
    let bot: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                EventBody::Message {
                    role: Role::Bot,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(bot.len(), 4);
    assert!(
        matches!(&bot[3].body, EventBody::Message { custom: Some(c), .. } if c["carousel"] == json!([1, 2]))
    );

    // An empty answer is a legal answer.
    assert_eq!(s.bot(&v, "empty").await, vec![]);
}

#[tokio::test]
async fn a_retry_gets_the_stored_answer_without_asking_the_bot_again() {
    let rasa = fake_rasa().await;
    let s = start(&upstream_config(&rasa.url)).await;
    let v = s.visitor().await;
    let body = json!({"sender": v.id, "message": "hello",
        "metadata": {"wcp": {"v": 2, "client_msg_id": "m-1", "source": "text"}}});
    let (_, first) = s
        .post_as("/webhooks/rest/webhook", Some(&v.token), &body)
        .await;
    let (_, second) = s
        .post_as("/webhooks/rest/webhook", Some(&v.token), &body)
        .await;
    assert_eq!(first, second);
    assert_eq!(first[0]["text"], "echo: hello");
    assert_eq!(rasa.calls.load(Ordering::SeqCst), 1, "asked once");
    // The same key with another text is an error, not a silent drop.
    let other = json!({"sender": v.id, "message": "something else",
        "metadata": {"wcp": {"v": 2, "client_msg_id": "m-1"}}});
    let (status, err) = s
        .post_as("/webhooks/rest/webhook", Some(&v.token), &other)
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("conflict")),
        "{err}"
    );
}

#[tokio::test]
async fn handover_payloads_from_the_upstream_start_a_handover() {
    let rasa = fake_rasa().await;
    let s = start(&upstream_config(&rasa.url)).await;
    let v = s.visitor().await;
    // The widget sends the page it is on with each message; a handover the answer starts
    // records it.
    let (status, _) = s
        .post_as(
            "/webhooks/rest/webhook",
            Some(&v.token),
            &json!({"sender": v.id, "message": "human",
                    "metadata": {"wcp": {"v": 2, "page_url": "https://shop.example.com/refunds"}}}),
        )
        .await;
    assert_eq!(status, 200);
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
    let h = conv.handover.unwrap();
    assert_eq!(h.queue, "billing");
    assert_eq!(
        h.page_url.as_deref(),
        Some("https://shop.example.com/refunds")
    );
    assert_eq!(h.message_to_agent.as_deref(), Some("Refund for order 1234"));
    assert_eq!(h.reason.as_str(), "bot_cannot_handle");
    // An upstream directive that names no trigger is recorded as `upstream`.
    assert_eq!(h.reason_text.as_deref(), Some("upstream"));
    // The widget then asks the handover endpoint, as for any directive, and is told it is
    // already queued rather than queued twice.
    let again = s.handover(&v).await;
    assert!(again.session.is_some());
    let after = s.service().visitor_by_token(&v.token).await.unwrap();
    assert_eq!(after.handover.unwrap().id, h.id, "one request, not two");

    // The legacy chatroom `handoff_host` payload also hands over (reason `policy`).
    let w = s.visitor().await;
    s.bot(&w, "legacy").await;
    let conv = s.service().visitor_by_token(&w.token).await.unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
    assert_eq!(conv.handover.unwrap().reason.as_str(), "policy");
}

#[tokio::test]
async fn an_upstream_that_fails_or_is_slow_gets_a_clear_message_in_the_transcript() {
    let rasa = fake_rasa().await;
    let s = start(&upstream_config(&rasa.url)).await;
    let v = s.visitor().await;
    let notice = s.service().config.texts.bot_unavailable.clone();
    for message in ["boom", "slow"] {
        let answer = s.bot(&v, message).await;
        assert_eq!(answer.len(), 1, "{message}");
        assert_eq!(
            answer[0].text.as_deref(),
            Some(notice.as_str()),
            "{message}"
        );
    }
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    let events = s.service().events_after(&conv.id, 0, 100).await.unwrap();
    let texts: Vec<(Role, String)> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { role, text, .. } => Some((*role, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            (Role::Visitor, "boom".into()),
            (Role::System, notice.clone()),
            (Role::Visitor, "slow".into()),
            (Role::System, notice),
        ],
        "the visitor's messages and the notices are stored"
    );

    // Unreachable: nothing listens on the port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = start(&upstream_config(&dead)).await;
    let v = s.visitor().await;
    let answer = s.bot(&v, "hello").await;
    assert_eq!(
        answer[0].text.as_deref(),
        Some(s.service().config.texts.bot_unavailable.as_str())
    );
}

/// A flow over HTTP, one request per message as the widget sends them: the bot's memory
/// lives in the database between turns, so the slots reach the agent with the handover.
#[tokio::test]
async fn a_flow_fills_slots_across_requests_and_the_agent_sees_them() {
    let s = start("").await;
    flow_reaches_the_agent(&s).await;
}

#[tokio::test]
async fn a_flow_fills_slots_across_requests_on_postgres_and_nats() {
    let s = crate::harness::start_with(
        crate::harness::Backend::PostgresNats,
        "",
        baton_server::Deps::default(),
    )
    .await;
    flow_reaches_the_agent(&s).await;
    s.stop().await;
}

async fn flow_reaches_the_agent(s: &crate::harness::TestServer) {
    let login = s.login().await;
    let mut agent = s.agent_ws(&login.token).await;
    let v = s.visitor().await;
    let text = |a: &[BotMessage]| a.iter().filter_map(|m| m.text.clone()).collect::<Vec<_>>();
    assert_eq!(
        text(&s.bot(&v, "Rufen Sie mich bitte zurück").await),
        ["Gern. Wie heißen Sie?"]
    );
    s.bot(&v, "Ada Lovelace").await;
    let bad = s.bot(&v, "ada at home").await;
    assert_eq!(
        bad[0].text.as_deref(),
        Some("Das sieht nicht nach einer E-Mail-Adresse aus.")
    );
    s.bot(&v, "ada@example.org").await;
    let done = s.bot(&v, "support").await;
    assert!(done.iter().any(|m| m.handover().is_some()));

    // Queued in the flow's queue, with the trigger and the slots.
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
    let h = conv.handover.clone().unwrap();
    assert_eq!(h.queue, "support");
    assert_eq!(h.reason.as_str(), "policy");
    assert_eq!(h.reason_text.as_deref(), Some("flow"));
    let slots: Vec<(String, String)> = h.slots.into_iter().map(|s| (s.name, s.value)).collect();
    assert_eq!(
        slots,
        [
            ("name".to_owned(), "Ada Lovelace".to_owned()),
            ("email".to_owned(), "ada@example.org".to_owned()),
            ("topic".to_owned(), "support".to_owned()),
        ]
    );
    // The console hears of it with the slots; the visitor's copy of the log has none.
    let frame = agent
        .recv_until(|f| matches!(f, baton_protocol::ws::AgentServerFrame::Waiting { .. }))
        .await;
    let baton_protocol::ws::AgentServerFrame::Waiting { conversation } = frame else {
        unreachable!()
    };
    assert_eq!(conversation.slots.len(), 3);
    assert_eq!(conversation.reason_text.as_deref(), Some("flow"));
    let events = s.service().events_after(&conv.id, 0, 100).await.unwrap();
    let visible: Vec<_> = events.iter().map(|e| e.for_visitor()).collect();
    assert!(visible.iter().all(|e| !matches!(
        &e.body,
        EventBody::HandoverRequested { slots, .. } if !slots.is_empty()
    )));
    assert!(events.iter().any(|e| matches!(
        &e.body,
        EventBody::HandoverRequested { slots, .. } if slots.len() == 3
    )));

    // The widget's menu item is recorded as such, and ends what the bot had open: after the
    // agent chat, the flow's question is not waiting for an answer any more.
    let w = s.visitor().await;
    s.bot(&w, "call me back").await;
    s.handover(&w).await;
    let memory = s
        .service()
        .store
        .bot_memory(&s.service().visitor_by_token(&w.token).await.unwrap().id)
        .await
        .unwrap();
    assert_eq!(memory.as_deref(), Some("{}"));
    let conv = s.service().visitor_by_token(&w.token).await.unwrap();
    assert_eq!(
        conv.handover.unwrap().reason_text.as_deref(),
        Some("menu_item")
    );
}
