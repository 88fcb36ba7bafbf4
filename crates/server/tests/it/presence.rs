//! Agents going away: a console that closes keeps its agent online for the grace period (a
//! reload), then the agent's chats are handed back to their queue, at the place their
//! request had, with the whole transcript; or they end, as the site chooses. No chat is left
//! with an agent who is not there.

use std::sync::Arc;
use std::time::Duration;

use baton_protocol::ids::{ClientMsgId, ConversationId};
use baton_protocol::state::ConversationState;
use baton_protocol::ws::*;
use baton_server::Deps;
use baton_server::clock::ManualClock;

use crate::harness::{Backend, Ws, queued_visitor, start_with};

const STAFF: &str = r#"
[[agents]]
email = "dana@x"
name = "Dana"
password = "pw-dana"

[[agents]]
email = "sam@x"
name = "Sam"
password = "pw-sam"

[offloading]
console_grace = "20s"
"#;

/// Thursday 2026-11-19, 16:00 UTC.
const T0: i64 = 1_795_104_000_000;

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// `console` takes `id` and writes a line in it.
async fn accept_and_write(console: &mut Ws, id: &ConversationId, text: &str) {
    console
        .send(&AgentFrame::Accept {
            conversation_id: id.clone(),
        })
        .await;
    console
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await;
    console
        .send(&AgentFrame::Message {
            conversation_id: id.clone(),
            client_msg_id: ClientMsgId::from(format!("a_{}", id.0).as_str()),
            text: text.into(),
        })
        .await;
    console
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Ack { .. }))
        .await;
}

/// Reads the visitor's socket until the server's notice and the event after it that
/// `ends` accepts; returns the notice and that event.
async fn notice_then(ws: &mut Ws, ends: impl Fn(&EventBody) -> bool) -> (String, EventBody) {
    let mut notice = None;
    loop {
        if let VisitorServerFrame::Event { event } = ws.recv::<VisitorServerFrame>().await {
            match event.body {
                EventBody::Message {
                    role: Role::System,
                    text,
                    ..
                } => notice = Some(text),
                body if ends(&body) => return (notice.expect("the notice comes first"), body),
                _ => {}
            }
        }
    }
}

/// [`notice_then`] for Dana leaving: the chat queued again, or ended by the server.
async fn told_agent_left(ws: &mut Ws) -> String {
    let (notice, body) = notice_then(ws, |b| {
        matches!(b, EventBody::AgentLeft { .. } | EventBody::ChatEnded { .. })
    })
    .await;
    match body {
        EventBody::AgentLeft { agent } => assert_eq!(agent.name, "Dana"),
        EventBody::ChatEnded { by } => assert_eq!(by, baton_protocol::state::EndedBy::System),
        _ => unreachable!(),
    }
    notice
}

#[tokio::test]
async fn an_agent_gone_offline_hands_the_chat_back_to_its_queue_with_its_transcript() {
    requeued(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_agent_gone_offline_hands_the_chat_back_on_postgres_and_nats() {
    requeued(Backend::PostgresNats).await;
}

async fn requeued(backend: Backend) {
    let clock = Arc::new(ManualClock::at(T0));
    let s = start_with(
        backend,
        STAFF,
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut console = s.agent_ws(&dana.token).await;
    let (v, id, mut ws) = queued_visitor(&s, "hello").await;
    accept_and_write(&mut console, &id, "Hi, I'm Dana.").await;
    // Someone else asks for a person meanwhile: they wait behind the first request.
    let (_w, other, mut other_ws) = queued_visitor(&s, "what does it cost").await;

    // Dana's console closes (a reload, a lost network…): within the grace period nothing
    // changes for the visitor.
    drop(console);
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock.advance(10_000);
    s.service().recheck_agents().await;
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    assert!(
        matches!(&conv.view.state, ConversationState::AgentJoined { agent } if agent.name == "Dana"),
        "still with Dana within the grace period: {:?}",
        conv.view.state
    );

    // The grace period is over (the console's 30 s lease is not): Dana is gone. The visitor
    // is told, and waits again, first in line, ahead of the one who asked later.
    clock.advance(11_000);
    s.service().recheck_agents().await;
    let notice = told_agent_left(&mut ws).await;
    assert_eq!(
        notice,
        "Dana has left the chat. You are back in the queue, and the next agent will see \
         everything you wrote."
    );
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    assert!(
        matches!(conv.view.state, ConversationState::Queued { .. }),
        "{:?}",
        conv.view.state
    );
    ws.recv_until(|f: &VisitorServerFrame| {
        matches!(
            f,
            VisitorServerFrame::Queue {
                position: Some(1),
                ..
            }
        )
    })
    .await;
    other_ws
        .recv_until(|f: &VisitorServerFrame| {
            matches!(
                f,
                VisitorServerFrame::Queue {
                    position: Some(2),
                    ..
                }
            )
        })
        .await;
    // Running the check again changes nothing.
    let head = conv.view.head_seq;
    s.service().recheck_agents().await;
    assert_eq!(
        s.service()
            .visitor_by_token(&v.token)
            .await
            .unwrap()
            .view
            .head_seq,
        head
    );

    // Sam sees both waiting, the first one first, and takes it with its whole transcript.
    let sam = s.login_as("sam@x", "pw-sam").await;
    let mut sam_ws = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", sam.token))).await;
    let AgentServerFrame::Welcome { waiting, .. } = sam_ws.recv().await else {
        panic!("welcome first")
    };
    let order: Vec<_> = waiting.iter().map(|c| c.conversation_id.clone()).collect();
    assert_eq!(order, [id.clone(), other.clone()]);
    sam_ws
        .send(&AgentFrame::Accept {
            conversation_id: id.clone(),
        })
        .await;
    let AgentServerFrame::Transcript { events, .. } = sam_ws
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await
    else {
        unreachable!()
    };
    let said = texts(&events);
    assert_eq!(said[0], "hello");
    assert!(said.contains(&"Hi, I'm Dana.".to_owned()), "{said:?}");
    assert!(said.contains(&notice), "{said:?}");
    ws.recv_until(|f: &VisitorServerFrame| {
        matches!(f, VisitorServerFrame::Event { event } if matches!(&event.body, EventBody::AgentJoined { agent } if agent.name == "Sam"))
    })
    .await;
    drop((ws, other_ws, sam_ws));
    s.stop().await;
}

/// `agent_gone = "end"`, on PostgreSQL and NATS with the agent on one replica and the
/// visitor on the other: the chat ends with the notice, and the bot answers again.
#[tokio::test]
async fn an_agent_gone_offline_ends_the_chat_when_configured_across_replicas() {
    let clock = Arc::new(ManualClock::at(T0));
    let cfg = format!("{STAFF}agent_gone = \"end\"\n");
    let a = start_with(
        Backend::PostgresNats,
        &cfg,
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let b = crate::harness::replica_of_with(
        &a,
        &cfg,
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let dana = a.login_as("dana@x", "pw-dana").await;
    let mut console = a.agent_ws(&dana.token).await;
    let (v, id, mut ws) = queued_visitor(&b, "hello").await;
    accept_and_write(&mut console, &id, "Hi, I'm Dana.").await;
    drop(console);
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock.advance(21_000);
    // Replica b notices (any replica may).
    b.service().recheck_agents().await;
    let notice = told_agent_left(&mut ws).await;
    assert_eq!(
        notice,
        "Dana has left the chat. The assistant is here to help again."
    );
    let conv = b.service().visitor_by_token(&v.token).await.unwrap();
    assert!(matches!(conv.view.state, ConversationState::Ended { .. }));
    let reply = b.bot(&v, "hello").await;
    assert!(reply[0].text.as_deref().unwrap().contains("demo assistant"));
    drop(ws);
    b.stop().await;
    a.stop().await;
}

/// Capacity: an agent takes at most its `max_chats` at once (its own, else the site's); the
/// next one is refused with the reason, until one of its chats ends.
#[tokio::test]
async fn an_agent_takes_no_more_chats_than_its_limit() {
    let s = start_with(
        Backend::Sqlite,
        &format!("{STAFF}max_chats = 1\n[[agents]]\nemail = \"kim@x\"\nname = \"Kim\"\npassword = \"pw-kim\"\nmax_chats = 2\n"),
        Deps::default(),
    )
    .await;
    let mut ids = vec![];
    let mut sockets = vec![];
    for first in ["one", "two", "three"] {
        let (_, id, ws) = queued_visitor(&s, first).await;
        ids.push(id);
        sockets.push(ws);
    }
    let kim = s.login_as("kim@x", "pw-kim").await;
    let mut kim = s.agent_ws(&kim.token).await;
    accept_and_write(&mut kim, &ids[0], "Hello one.").await;
    accept_and_write(&mut kim, &ids[1], "Hello two.").await;
    // A third is one too many for Kim (her own limit is 2).
    let (code, message) = refused(&mut kim, &ids[2]).await;
    assert_eq!(code, ErrorCode::Conflict);
    assert!(message.contains("2 chats open"), "{message}");
    // Accepting one she has is no new chat.
    kim.send(&AgentFrame::Accept {
        conversation_id: ids[0].clone(),
    })
    .await;
    // Dana follows the site's limit (1): she may take the third, then no other.
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut dana = s.agent_ws(&dana.token).await;
    accept_and_write(&mut dana, &ids[2], "Hello three.").await;
    let (_, id4, _ws4) = queued_visitor(&s, "four").await;
    let (code, _) = refused(&mut dana, &id4).await;
    assert_eq!(code, ErrorCode::Conflict);
    // Kim ends one: room for the fourth.
    kim.send(&AgentFrame::End {
        conversation_id: ids[0].clone(),
    })
    .await;
    crate::harness::eventually("the chat ended", || async {
        let conv = s
            .service()
            .store
            .conversation(&ids[0])
            .await
            .unwrap()
            .unwrap();
        matches!(conv.view.state, ConversationState::Ended { .. }).then_some(())
    })
    .await;
    accept_and_write(&mut kim, &id4, "Hello four.").await;
}

/// Asks to accept `id` and returns the refusal.
async fn refused(ws: &mut Ws, id: &ConversationId) -> (ErrorCode, String) {
    ws.send(&AgentFrame::Accept {
        conversation_id: id.clone(),
    })
    .await;
    let AgentServerFrame::Error { code, message, .. } = ws
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    (code, message)
}

/// Nobody takes a waiting chat within `queue_timeout` (a fixed clock): the visitor is told,
/// the request is answered `unavailable`, and the visitor may leave a message. A chat back in
/// the queue after its agent left counts from then, not from its first request.
#[tokio::test]
async fn a_chat_nobody_takes_in_time_offers_to_leave_a_message() {
    let clock = Arc::new(ManualClock::at(T0));
    let s = start_with(
        Backend::Sqlite,
        &format!("{STAFF}queue_timeout = \"10m\"\n"),
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let (v, id, mut ws) = queued_visitor(&s, "hello").await;
    // A second chat, taken at 5 min by Dana, who then leaves: back in the queue at 6 min.
    let (_w, other, _other_ws) = queued_visitor(&s, "hi there").await;
    clock.advance(5 * 60_000);
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut console = s.agent_ws(&dana.token).await;
    accept_and_write(&mut console, &other, "Hi.").await;
    drop(console);
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock.advance(60_000);
    s.service().recheck_agents().await;
    let state = |id: ConversationId| {
        let s = &s;
        async move {
            s.service()
                .store
                .conversation(&id)
                .await
                .unwrap()
                .unwrap()
                .view
                .state
        }
    };
    assert!(matches!(
        state(other.clone()).await,
        ConversationState::Queued { .. }
    ));

    // 9 minutes: still waiting.
    clock.advance(3 * 60_000);
    s.service().recheck_queue_timeouts().await;
    assert!(matches!(
        state(id.clone()).await,
        ConversationState::Queued { .. }
    ));
    // 11 minutes: the first is told; the other, queued again at 6 minutes, still waits.
    clock.advance(2 * 60_000);
    s.service().recheck_queue_timeouts().await;
    let (notice, outcome) =
        notice_then(&mut ws, |b| matches!(b, EventBody::HandoverOutcome { .. })).await;
    assert_eq!(
        outcome,
        EventBody::HandoverOutcome {
            outcome: ConversationState::Unavailable
        }
    );
    assert!(notice.starts_with("Sorry, nobody could take your chat in time."));
    assert_eq!(state(id.clone()).await, ConversationState::Unavailable);
    assert!(matches!(
        state(other.clone()).await,
        ConversationState::Queued { .. }
    ));
    // The visitor leaves a message instead.
    let (code, body) = s
        .post_as(
            "/api/v1/visitor/message",
            Some(&v.token),
            &serde_json::json!({"visitor_id": v.id, "name": "Ada", "email": "ada@example.org",
                "text": "Please call me back."}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    // The bot answers again.
    assert!(!s.bot(&v, "hello").await.is_empty());
    // 16 minutes and more: the other one's turn, counted from when it was queued again.
    clock.advance(5 * 60_000 + 1);
    s.service().recheck_queue_timeouts().await;
    assert_eq!(state(other).await, ConversationState::Unavailable);
}
