//! Routing: a handover's queue and skill decide which agents see it and may take it, which
//! agents count as "online" for it, and which texts the visitor reads.

use baton_protocol::ids::ConversationId;
use baton_protocol::state::ConversationState;
use baton_protocol::ws::*;
use baton_server::Deps;

use crate::harness::{Backend, TestServer, Visitor, Ws, start, start_with};

const CONFIG: &str = r#"
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
skills = ["german"]

[[agents]]
email = "ada@x"
name = "Ada"
password = "pw-any"

[queues.sales]
when_no_agents = "unavailable"
waiting = "Sales will be with you shortly."
unavailable = "Sales is offline; the assistant can help meanwhile."
assigned = "{agent} from sales is looking at your question."

[queues.support]
waiting_no_agents = "Support is offline; we'll answer when someone is back."

[[bot.intents]]
name = "sales"
examples = { en = ["talk to sales", "sales team"] }
answer = "Connecting you to sales."
handover = true
queue = "sales"

[[bot.intents]]
name = "german"
examples = { en = ["german support please"] }
answer = "Connecting you to German support."
handover = true
queue = "support"
skill = "german"
"#;

#[tokio::test]
async fn queues_and_skills_decide_who_sees_takes_and_counts() {
    let s = start(CONFIG).await;
    routes(&s).await;
}

#[tokio::test]
async fn queues_and_skills_route_on_postgres_and_nats() {
    let s = start_with(Backend::PostgresNats, CONFIG, Deps::default()).await;
    routes(&s).await;
    s.stop().await;
}

/// A visitor asks the bot with `text`; the answer to following its handover.
async fn ask(s: &TestServer, text: &str) -> (Visitor, HandoverResponse) {
    let v = s.visitor().await;
    s.bot(&v, text).await;
    let h = s.handover(&v).await;
    (v, h)
}

async fn console(s: &TestServer, email: &str, password: &str) -> (Ws, Vec<ConversationSummary>) {
    let login = s.login_as(email, password).await;
    let mut ws = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token))).await;
    let AgentServerFrame::Welcome { waiting, .. } = ws.recv().await else {
        panic!("welcome first")
    };
    (ws, waiting)
}

fn ids(list: &[ConversationSummary]) -> Vec<ConversationId> {
    list.iter().map(|c| c.conversation_id.clone()).collect()
}

async fn refused(ws: &mut Ws, frame: AgentFrame) -> (ErrorCode, String) {
    ws.send(&frame).await;
    match ws
        .recv_until(|f: &AgentServerFrame| {
            matches!(
                f,
                AgentServerFrame::Error { .. } | AgentServerFrame::Transcript { .. }
            )
        })
        .await
    {
        AgentServerFrame::Error { code, message, .. } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn routes(s: &TestServer) {
    // Nobody online. Sales takes online agents only: refused with the queue's own text.
    let (_, h) = ask(s, "talk to sales").await;
    assert_eq!(h.state, ConversationState::Unavailable, "{h:?}");
    assert_eq!(
        h.message,
        "Sales is offline; the assistant can help meanwhile."
    );
    // Support waits for offline agents too, with its own text.
    let (_, german) = ask(s, "german support please").await;
    assert!(
        matches!(
            german.state,
            ConversationState::Queued {
                agents_online: Some(false),
                ..
            }
        ),
        "{german:?}"
    );
    assert_eq!(
        german.message,
        "Support is offline; we'll answer when someone is back."
    );
    let german = german.session.expect("queued").conversation_id;

    // Sam serves sales only: the German support chat is not his to see.
    let (mut sam, waiting) = console(s, "sam@x", "pw-sales").await;
    assert!(waiting.is_empty(), "{waiting:?}");
    // Dirk serves support with German: he sees it.
    let (mut dirk, waiting) = console(s, "dirk@x", "pw-support").await;
    assert_eq!(ids(&waiting), std::slice::from_ref(&german));
    assert_eq!(waiting[0].queue.as_deref(), Some("support"));
    assert_eq!(waiting[0].skill.as_deref(), Some("german"));
    // Ada serves every queue but has no German: she does not see it either.
    let (mut ada, waiting) = console(s, "ada@x", "pw-any").await;
    assert!(waiting.is_empty(), "{waiting:?}");

    // Now Sam is online: a sales request queues, with the queue's waiting text.
    let (v, h) = ask(s, "talk to sales").await;
    assert!(
        matches!(
            h.state,
            ConversationState::Queued {
                agents_online: Some(true),
                ..
            }
        ),
        "{h:?}"
    );
    assert_eq!(h.message, "Sales will be with you shortly.");
    let sales = h.session.expect("queued").conversation_id;
    // Sam and Ada hear of it; Dirk does not (his next queue frame is a later one).
    for ws in [&mut sam, &mut ada] {
        let AgentServerFrame::Waiting { conversation } = ws
            .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Waiting { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(conversation.conversation_id, sales);
        assert_eq!(conversation.queue.as_deref(), Some("sales"));
    }
    // Dirk may neither read nor take it.
    let (code, message) = refused(
        &mut dirk,
        AgentFrame::Open {
            conversation_id: sales.clone(),
        },
    )
    .await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(message.contains("queue"), "{message}");
    let (code, _) = refused(
        &mut dirk,
        AgentFrame::Accept {
            conversation_id: sales.clone(),
        },
    )
    .await;
    assert_eq!(code, ErrorCode::Forbidden);
    // Nor may Sam take the German chat.
    let (code, _) = refused(
        &mut sam,
        AgentFrame::Accept {
            conversation_id: german.clone(),
        },
    )
    .await;
    assert_eq!(code, ErrorCode::Forbidden);

    // A later request Dirk serves is the next thing he hears of.
    let (_, again) = ask(s, "german support please").await;
    let again = again.session.expect("queued").conversation_id;
    let AgentServerFrame::Waiting { conversation } = dirk
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Waiting { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(conversation.conversation_id, again, "not the sales chat");

    // Sam takes the sales chat: the visitor reads the queue's "assigned" notice.
    sam.send(&AgentFrame::Accept {
        conversation_id: sales.clone(),
    })
    .await;
    let AgentServerFrame::Transcript { events, .. } = sam
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await
    else {
        unreachable!()
    };
    let notice = events.iter().rev().find_map(|e| match &e.body {
        EventBody::Message {
            role: Role::System,
            text,
            ..
        } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(
        notice.as_deref(),
        Some("Sam from sales is looking at your question.")
    );
    let mut visitor = s.visitor_ws(&v, 0).await;
    let VisitorServerFrame::Event { event } = visitor
        .recv_until(|f: &VisitorServerFrame| {
            matches!(f, VisitorServerFrame::Event { event } if matches!(&event.body, EventBody::Message { role: Role::System, .. }))
        })
        .await
    else {
        unreachable!()
    };
    assert!(
        matches!(&event.body, EventBody::Message { text, .. } if text.starts_with("Sam from sales")),
        "{event:?}"
    );
    // Dirk takes his; Sam still may not read it.
    dirk.send(&AgentFrame::Accept {
        conversation_id: german.clone(),
    })
    .await;
    dirk.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { conversation, .. } if conversation.conversation_id == german))
        .await;
    let (code, _) = refused(
        &mut sam,
        AgentFrame::Open {
            conversation_id: german,
        },
    )
    .await;
    assert_eq!(code, ErrorCode::Forbidden);
}
