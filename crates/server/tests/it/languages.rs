//! Visitor-facing texts in the widget's language: the settings, the status, the handover's
//! answer and the socket's status frames.

use baton_protocol::ws::*;
use serde_json::json;

use crate::harness::start;

#[tokio::test]
async fn every_sentence_comes_in_the_widget_s_language() {
    let s = start("[texts.de]\nsend = \"Los\"\n").await;
    // The settings: the closest language, its direction, its texts.
    let de: WidgetSettings =
        serde_json::from_value(s.get_json("/api/v1/widget?locale=de-AT").await).unwrap();
    assert_eq!((de.locale.as_str(), de.dir.as_str()), ("de", "ltr"));
    assert_eq!(de.texts["send"], "Los");
    assert_eq!(de.texts["message_label"], "Nachricht");
    let ar: WidgetSettings =
        serde_json::from_value(s.get_json("/api/v1/widget?locale=ar").await).unwrap();
    assert_eq!((ar.locale.as_str(), ar.dir.as_str()), ("ar", "rtl"));
    assert_eq!(ar.texts["send"], "إرسال");
    let other: WidgetSettings =
        serde_json::from_value(s.get_json("/api/v1/widget?locale=fr").await).unwrap();
    assert_eq!(
        (other.locale.as_str(), other.texts["send"].as_str()),
        ("en", "Send")
    );
    let none: WidgetSettings = serde_json::from_value(s.get_json("/api/v1/widget").await).unwrap();
    assert_eq!(none.locale, "en");

    // The status.
    let status = s.get_json("/api/v1/status?locale=de").await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Zurzeit ist kein Mitarbeiter"),
        "{status}"
    );

    // The handover's answer, and the socket's status frames.
    let v = s.visitor().await;
    let (code, body) = s
        .post_as(
            "/api/v1/handover",
            Some(&v.token),
            &json!({"visitor_id": v.id, "locale": "ar"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let h: HandoverResponse = serde_json::from_value(body).unwrap();
    assert!(h.message.starts_with("لا يوجد موظفون"), "{}", h.message);
    assert_eq!(h.status.message, Some(h.message.clone()));
    let session = h.session.unwrap();
    let mut ws = crate::harness::Ws::connect(
        &s.ws_url(&format!("/api/v1/visitor/ws?token={}&locale=ar", v.token)),
    )
    .await;
    ws.send(&VisitorFrame::Hello {
        last_seq: session.head_seq,
    })
    .await;
    let VisitorServerFrame::Status { status } = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Status { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(status.message.unwrap().starts_with("لا يوجد موظفون"));
}

pub const SALES: &str = r#"
[[agents]]
email = "sam@x"
name = "Sam"
password = "pw-sales"
queues = ["sales"]

[[agents]]
email = "dirk@x"
name = "Dirk"
password = "pw-support"
queues = ["support"]

[queues.sales]
waiting = { en = "Sales will be with you shortly.", de = "Der Vertrieb ist gleich für Sie da." }
waiting_no_agents = { en = "Sales is offline right now.", de = "Der Vertrieb ist gerade nicht da." }
assigned = { en = "{agent} from sales is here.", de = "{agent} vom Vertrieb ist da." }

[[bot.intents]]
name = "sales"
examples = { en = ["talk to sales"], de = ["vertrieb bitte"] }
answer = { en = "Connecting you to sales.", de = "Ich verbinde Sie mit dem Vertrieb." }
handover = true
queue = "sales"
"#;

/// A queue's texts come in the visitor's language, from the bot's handover on: its answer,
/// the status line (which follows the queue's own agents, not the site's) and the notice
/// when an agent takes the chat.
#[tokio::test]
async fn a_queue_speaks_the_visitor_s_language_and_its_line_follows_its_own_agents() {
    let s = start(SALES).await;
    let v = s.visitor().await;
    // The widget's language rides on the bot turn (`?locale=`), so the bot's handover
    // records it.
    let (code, body) = s
        .post_as(
            "/webhooks/rest/webhook?locale=de-AT",
            Some(&v.token),
            &json!({"sender": v.id, "message": "vertrieb bitte"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    let handover = conv.handover.clone().expect("the bot handed over");
    assert_eq!(
        (handover.queue.as_str(), handover.locale.as_deref()),
        ("sales", Some("de"))
    );
    let (code, body) = s
        .post_as(
            "/api/v1/handover",
            Some(&v.token),
            &json!({"visitor_id": v.id, "locale": "de"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let h: HandoverResponse = serde_json::from_value(body).unwrap();
    assert_eq!(h.message, "Der Vertrieb ist gerade nicht da.");

    let session = h.session.expect("queued");
    let mut ws = crate::harness::Ws::connect(
        &s.ws_url(&format!("/api/v1/visitor/ws?token={}&locale=de", v.token)),
    )
    .await;
    ws.send(&VisitorFrame::Hello {
        last_seq: session.head_seq,
    })
    .await;
    let status = |f: &VisitorServerFrame| match f {
        VisitorServerFrame::Status { status } => Some(status.clone()),
        _ => None,
    };
    let first = status(
        &ws.recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Status { .. }))
            .await,
    )
    .unwrap();
    assert_eq!(first.agents_online, Some(false));
    assert_eq!(
        first.message.as_deref(),
        Some("Der Vertrieb ist gerade nicht da.")
    );

    // Support's agent comes online: the site has an agent, sales still has none.
    let dirk = s.login_as("dirk@x", "pw-support").await;
    let _dirk = s.agent_ws(&dirk.token).await;
    crate::harness::eventually("the site counts Dirk", || async {
        (s.service().agents_online().await.unwrap() == 1).then_some(())
    })
    .await;
    // Then sales' agent: only now is the visitor told someone of its queue is there.
    let sam = s.login_as("sam@x", "pw-sales").await;
    let mut sam = s.agent_ws(&sam.token).await;
    loop {
        let Some(now) = status(&ws.recv::<VisitorServerFrame>().await) else {
            continue;
        };
        if now.agents_online == Some(true) {
            assert_eq!(
                now.message.as_deref(),
                Some("Der Vertrieb ist gleich für Sie da.")
            );
            assert_eq!(
                s.service().agents_online_for("sales", None).await.unwrap(),
                1
            );
            break;
        }
        assert_eq!(
            now.message.as_deref(),
            Some("Der Vertrieb ist gerade nicht da."),
            "with only support's agent online"
        );
    }

    // Sam takes it: the visitor reads the queue's notice in German.
    sam.send(&AgentFrame::Accept {
        conversation_id: conv.id.clone(),
    })
    .await;
    let notice = ws
        .recv_until(|f: &VisitorServerFrame| {
            matches!(f, VisitorServerFrame::Event { event }
                if matches!(&event.body, EventBody::Message { role: Role::System, .. }))
        })
        .await;
    let VisitorServerFrame::Event { event } = notice else {
        unreachable!()
    };
    let EventBody::Message { text, .. } = event.body else {
        unreachable!()
    };
    assert_eq!(text, "Sam vom Vertrieb ist da.");
}

/// A queue's texts by language fall back to `[texts]`'s language, and bad ones are refused
/// with their line.
#[tokio::test]
async fn a_queue_without_the_visitor_s_language_answers_in_the_site_s() {
    let s = start(
        "[queues.default]\nwaiting_no_agents = { de = \"Niemand da.\", en = \"Nobody here.\" }\n",
    )
    .await;
    let v = s.visitor().await;
    let (code, body) = s
        .post_as(
            "/api/v1/handover",
            Some(&v.token),
            &json!({"visitor_id": v.id, "locale": "ar"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["message"], "Nobody here.");
    for (bad, why) in [
        ("waiting = {}", "may not be empty"),
        ("waiting = { xx_1 = \"a\" }", "is not a language tag"),
        ("waiting = { en = 5 }", "a table of texts by language"),
        ("waiting = { en = \"  \" }", "may not be empty"),
        ("waiting = { en = \"{agent}\" }", "is not filled here"),
    ] {
        let e = baton_server::config::Config::load_str(
            std::path::Path::new("baton.toml"),
            &format!("[queues.default]\n{bad}\n"),
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{bad}: {e}");
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
}

/// Baton's own notice when the bot cannot be reached comes in the widget's language.
#[tokio::test]
async fn the_bot_unreachable_notice_follows_the_widget_s_language() {
    let s = start("[bot]\nupstream = \"http://127.0.0.1:9\"\nupstream_timeout = \"500ms\"\n").await;
    let v = s.visitor().await;
    let (code, body) = s
        .post_as(
            "/webhooks/rest/webhook?locale=de",
            Some(&v.token),
            &json!({"sender": v.id, "message": "hallo"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let german = s
        .service()
        .config
        .texts_for(Some("de"))
        .1
        .bot_unavailable
        .clone();
    assert_ne!(german, s.service().config.texts.bot_unavailable);
    assert_eq!(body[0]["text"], german.as_str());
}
