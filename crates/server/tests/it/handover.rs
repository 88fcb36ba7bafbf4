//! The handover, end to end over real sockets: visitor → bot → person → agent → bot.

use baton_protocol::ids::ClientMsgId;
use baton_protocol::state::{ConversationState, EndedBy};
use baton_protocol::status::OffloadState;
use baton_protocol::ws::*;
use serde_json::json;

use baton_protocol::decide::View;
use baton_server::Deps;

use crate::harness::{Backend, TestServer, Ws, start, start_with};

fn message_text(e: &Event) -> Option<(&Role, &str)> {
    match &e.body {
        EventBody::Message { role, text, .. } => Some((role, text.as_str())),
        _ => None,
    }
}

#[tokio::test]
async fn visitor_reaches_an_agent_and_returns_to_the_bot() {
    let s = start("").await;
    full_round_trip(&s).await;
}

/// The same round trip on PostgreSQL and NATS.
#[tokio::test]
async fn the_round_trip_works_on_postgres_and_nats() {
    let s = start_with(Backend::PostgresNats, "", Deps::default()).await;
    full_round_trip(&s).await;
    s.stop().await;
}

async fn full_round_trip(s: &TestServer) {
    let login = s.login().await;
    let mut agent =
        Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token))).await;
    let AgentServerFrame::Welcome { waiting, .. } = agent.recv().await else {
        panic!("welcome first")
    };
    assert!(waiting.is_empty());

    // The bot phase, recorded as the transcript the agent will see.
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    let h = s.handover(&v).await;
    assert!(
        matches!(
            h.state,
            ConversationState::Queued {
                position: Some(1),
                agents_online: Some(true)
            }
        ),
        "{h:?}"
    );
    assert_eq!(h.status.state, OffloadState::Open);
    assert!(h.message.starts_with("Please wait"));
    let session = h.session.expect("a session when queued");

    // The console learns of the waiting conversation at once.
    let AgentServerFrame::Waiting { conversation } = agent
        .recv_until(|f| matches!(f, AgentServerFrame::Waiting { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(conversation.conversation_id, session.conversation_id);
    assert_eq!(conversation.preview.as_deref(), Some("hello"));
    assert_eq!(
        conversation.page_url.as_deref(),
        Some("https://shop.example.com/cart")
    );
    // The answer carries the request's events, which lead any client to the same state.
    let mut view = View::default();
    baton_protocol::decide::replay(&mut view, &h.events);
    assert!(matches!(view.state, ConversationState::Queued { .. }));
    assert_eq!(h.events.last().map(|e| e.seq), Some(session.head_seq));
    assert!(
        h.events.iter().all(|e| !matches!(
            &e.body,
            EventBody::HandoverRequested {
                message_to_agent: Some(_),
                ..
            }
        )),
        "the note for the agent is not sent to the visitor"
    );

    // Asking twice is idempotent: same conversation, same seq, no new request.
    let again = s.handover(&v).await;
    assert_eq!(
        again
            .session
            .as_ref()
            .map(|x| (&x.conversation_id, x.head_seq)),
        Some((&session.conversation_id, session.head_seq))
    );

    let mut visitor = s.visitor_ws(&v, session.head_seq).await;
    let VisitorServerFrame::Welcome {
        state, head_seq, ..
    } = visitor.recv().await
    else {
        panic!("welcome first")
    };
    assert!(matches!(state, ConversationState::Queued { .. }));
    assert_eq!(head_seq, session.head_seq);
    let VisitorServerFrame::Status { status } = visitor.recv().await else {
        panic!("the offloading status after the welcome")
    };
    assert_eq!(
        (status.state, status.agents_online),
        (OffloadState::Open, Some(true))
    );
    let VisitorServerFrame::Queue { position, .. } = visitor.recv().await else {
        panic!("queue position")
    };
    assert_eq!(position, Some(1));

    // While queued the bot still answers, over the socket.
    visitor
        .send(&VisitorFrame::Message {
            client_msg_id: ClientMsgId::from("m1"),
            text: "what are your opening hours".into(),
        })
        .await;
    let bot_reply = visitor
        .recv_until(|f| matches!(f, VisitorServerFrame::Event { event } if message_text(event).is_some_and(|(r, _)| *r == Role::Bot)))
        .await;
    let VisitorServerFrame::Event { event } = bot_reply else {
        unreachable!()
    };
    assert!(message_text(&event).unwrap().1.contains("Monday to Friday"));

    // The agent reads the transcript, then accepts.
    agent
        .send(&AgentFrame::Accept {
            conversation_id: session.conversation_id.clone(),
        })
        .await;
    let AgentServerFrame::Transcript { events, .. } = agent
        .recv_until(|f| matches!(f, AgentServerFrame::Transcript { .. }))
        .await
    else {
        unreachable!()
    };
    let texts: Vec<_> = events
        .iter()
        .filter_map(message_text)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts[0], "hello");
    assert!(
        texts[1].contains("demo assistant"),
        "the bot's answer is in the transcript: {texts:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, EventBody::HandoverRequested { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, EventBody::AgentJoined { .. }))
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free seqs from 1"
    );

    let joined = visitor.recv_until(|f| matches!(f, VisitorServerFrame::Event { event } if matches!(event.body, EventBody::AgentJoined { .. }))).await;
    let VisitorServerFrame::Event {
        event:
            Event {
                body: EventBody::AgentJoined { agent: who },
                ..
            },
    } = joined
    else {
        unreachable!()
    };
    assert_eq!(who.name, "Dana");

    // Agent → visitor.
    agent
        .send(&AgentFrame::Message {
            conversation_id: session.conversation_id.clone(),
            client_msg_id: ClientMsgId::from("a1"),
            text: "Hi, I'm Dana. <b>How</b> can I help?".into(),
        })
        .await;
    let AgentServerFrame::Ack { seq: agent_seq, .. } = agent
        .recv_until(|f| matches!(f, AgentServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    let got = visitor
        .recv_until(|f| matches!(f, VisitorServerFrame::Event { event } if event.seq == agent_seq))
        .await;
    let VisitorServerFrame::Event { event } = got else {
        unreachable!()
    };
    assert_eq!(
        message_text(&event),
        Some((&Role::Agent, "Hi, I'm Dana. <b>How</b> can I help?")),
        "text passes through untouched, never as HTML"
    );

    // Visitor → agent, with a retry of the same client_msg_id stored once.
    for _ in 0..2 {
        visitor
            .send(&VisitorFrame::Message {
                client_msg_id: ClientMsgId::from("m2"),
                text: "Order 1234".into(),
            })
            .await;
    }
    let VisitorServerFrame::Ack { seq: first, .. } = visitor.recv_until(|f| matches!(f, VisitorServerFrame::Ack { client_msg_id, .. } if client_msg_id.as_str() == "m2")).await else { unreachable!() };
    let VisitorServerFrame::Ack { seq: second, .. } = visitor.recv_until(|f| matches!(f, VisitorServerFrame::Ack { client_msg_id, .. } if client_msg_id.as_str() == "m2")).await else { unreachable!() };
    assert_eq!(
        first, second,
        "a retry is acknowledged with the original seq"
    );
    let AgentServerFrame::Event { event, .. } = agent
        .recv_until(|f| matches!(f, AgentServerFrame::Event { event, .. } if event.seq == first))
        .await
    else {
        unreachable!()
    };
    assert_eq!(message_text(&event), Some((&Role::Visitor, "Order 1234")));
    let all = s
        .service()
        .events_after(&session.conversation_id, 0, 1000)
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .filter(|e| message_text(e).is_some_and(|(_, t)| t == "Order 1234"))
            .count(),
        1,
        "stored once"
    );

    // The agent ends the chat; the visitor is told and the bot answers again.
    agent
        .send(&AgentFrame::End {
            conversation_id: session.conversation_id.clone(),
        })
        .await;
    let ended = visitor.recv_until(|f| matches!(f, VisitorServerFrame::Event { event } if matches!(event.body, EventBody::ChatEnded { .. }))).await;
    assert!(matches!(
        ended,
        VisitorServerFrame::Event {
            event: Event {
                body: EventBody::ChatEnded { by: EndedBy::Agent },
                ..
            }
        }
    ));
    let answer = s.bot(&v, "hello again").await;
    assert!(answer[0].text.as_ref().unwrap().contains("demo assistant"));
    let conv = s
        .service()
        .store
        .conversation(&session.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.view.state, ConversationState::Bot);

    // The agent can no longer write into it.
    agent
        .send(&AgentFrame::Message {
            conversation_id: session.conversation_id.clone(),
            client_msg_id: ClientMsgId::from("a2"),
            text: "still there?".into(),
        })
        .await;
    let AgentServerFrame::Error {
        code,
        client_msg_id,
        ..
    } = agent
        .recv_until(|f| matches!(f, AgentServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::InvalidState);
    // The refusal names the message, so the console stops re-sending it.
    assert_eq!(client_msg_id, Some(ClientMsgId::from("a2")));
}

#[tokio::test]
async fn a_second_agent_cannot_take_a_taken_conversation() {
    let s = start("[[agents]]\nemail = \"a@x\"\nname = \"A\"\npassword = \"pa\"\n[[agents]]\nemail = \"b@x\"\nname = \"B\"\npassword = \"pb\"\n").await;
    let mut tokens = vec![];
    for (email, pw) in [("a@x", "pa"), ("b@x", "pb")] {
        let (status, body) = s
            .post(
                "/api/v1/agent/login",
                &json!({"email": email, "password": pw}),
            )
            .await;
        assert_eq!(status, 200);
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    let mut a = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", tokens[0]))).await;
    let mut b = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", tokens[1]))).await;
    let _: AgentServerFrame = a.recv().await;
    let _: AgentServerFrame = b.recv().await;
    let v = s.visitor().await;
    s.bot(&v, "hi").await;
    let id = s.handover(&v).await.session.unwrap().conversation_id;
    a.send(&AgentFrame::Accept {
        conversation_id: id.clone(),
    })
    .await;
    a.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await;
    // B sees it leave the queue, and a late accept is refused with `conflict`.
    b.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Dequeued { conversation_id } if *conversation_id == id)).await;
    b.send(&AgentFrame::Accept {
        conversation_id: id,
    })
    .await;
    let AgentServerFrame::Error { code, message, .. } = b
        .recv_until(|f| matches!(f, AgentServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::Conflict);
    assert!(message.contains('A'), "{message}");
}

/// The widget's menu asking for a person.
async fn ask(s: &TestServer, v: &crate::harness::Visitor) -> (u16, serde_json::Value) {
    let body = json!({"visitor_id": v.id, "directive": {"reason": "user_request"}});
    s.post_as("/api/v1/handover", Some(&v.token), &body).await
}

#[tokio::test]
async fn the_menu_item_rule_holds_for_the_visitor_but_not_for_the_bot() {
    menu_item_rule(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_menu_item_rule_holds_on_postgres_and_nats() {
    menu_item_rule(Backend::PostgresNats).await;
}

async fn menu_item_rule(backend: Backend) {
    // After 2 messages: refused before, granted after.
    let s = start_with(
        backend,
        "[offloading]\nrequest_item = \"after 2 messages\"\n",
        Deps::default(),
    )
    .await;
    let settings = s.get_json("/api/v1/widget").await;
    assert_eq!(settings["request_item_after"], 2);
    let v = s.visitor().await;
    s.bot(&v, "hi").await;
    let (status, body) = ask(&s, &v).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    s.bot(&v, "my order is late").await;
    let (status, body) = ask(&s, &v).await;
    assert_eq!(status, 200, "{body}");
    assert!(matches!(
        serde_json::from_value::<HandoverResponse>(body)
            .unwrap()
            .state,
        ConversationState::Queued { .. }
    ));

    // Never: the visitor cannot ask, but the bot can still hand over (its "human" intent),
    // and the widget's following call gets that request.
    s.stop().await;
    let s = start_with(
        backend,
        "[offloading]\nrequest_item = \"never\"\n",
        Deps::default(),
    )
    .await;
    assert_eq!(
        s.get_json("/api/v1/widget").await["request_item_after"],
        json!(null)
    );
    let v = s.visitor().await;
    s.bot(&v, "hi").await;
    assert_eq!(ask(&s, &v).await.0, 403);
    let answer = s.bot(&v, "talk to a person").await;
    assert!(answer.iter().any(|m| m.handover().is_some()), "{answer:?}");
    let h = s.handover(&v).await;
    assert!(
        matches!(h.state, ConversationState::Queued { .. }),
        "{:?}",
        h.state
    );

    // The bot's handover may end where a new request is possible (nobody can come): the
    // widget's following call is still the bot's request, not the visitor's own.
    s.stop().await;
    let s = start_with(
        backend,
        "[offloading]\nrequest_item = \"never\"\nwhen_no_agents = \"unavailable\"\n",
        Deps::default(),
    )
    .await;
    let v = s.visitor().await;
    let answer = s.bot(&v, "talk to a person").await;
    assert!(answer.iter().any(|m| m.handover().is_some()), "{answer:?}");
    let h = s.handover(&v).await;
    assert_eq!(h.state, ConversationState::Unavailable);
    // Once the visitor writes again, asking is the visitor's own again: refused.
    s.bot(&v, "ok, thanks").await;
    assert_eq!(ask(&s, &v).await.0, 403);
    s.stop().await;
}

#[tokio::test]
async fn offloading_disabled_keeps_the_bot() {
    let s =
        start("[offloading]\nenabled = false\n[texts]\ndisabled = \"Switched off today.\"\n").await;
    let v = s.visitor().await;
    s.bot(&v, "hi").await;
    let h = s.handover(&v).await;
    assert_eq!(h.state, ConversationState::Disabled);
    assert_eq!(h.message, "Switched off today.");
    assert_eq!(h.status.state, OffloadState::Disabled);
    assert!(h.session.is_none(), "no agent socket when disabled");
    // Asking again with nothing said since gets the same answer, not a second request.
    let again = s.handover(&v).await;
    assert_eq!(again.events, h.events);
    // The bot still answers, and the conversation is back with it.
    assert!(
        s.bot(&v, "hello").await[0]
            .text
            .as_ref()
            .unwrap()
            .contains("demo assistant")
    );
    let status = s.get_json("/api/v1/status").await;
    assert_eq!(status["state"], "disabled");
}

#[tokio::test]
async fn outside_opening_hours_is_closed_with_the_next_opening() {
    // Friday 2026-11-20, 19:00 UTC = 20:00 at +01:00: closed until Monday 08:00.
    let clock = std::sync::Arc::new(baton_server::clock::ManualClock::at(1_795_201_200_000));
    let s = start_with(
        Backend::Sqlite,
        "[offloading]\nhours = [\"mon-fri 08:00-18:00\"]\nutc_offset = \"+01:00\"\n",
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let v = s.visitor().await;
    let h = s.handover(&v).await;
    assert_eq!(
        h.state,
        ConversationState::Closed {
            next_open_at: Some("2026-11-23T08:00:00+01:00".into())
        }
    );
    assert_eq!(h.status.state, OffloadState::Closed);
    assert!(h.session.is_none());

    // Monday 09:00 local: open, and the same visitor is queued.
    clock.set(1_795_420_800_000);
    let h = s.handover(&v).await;
    assert!(matches!(h.state, ConversationState::Queued { .. }), "{h:?}");
    assert_eq!(h.status.state, OffloadState::Open);
}

#[tokio::test]
async fn with_nobody_online_the_policy_decides() {
    let s = start("[offloading]\nwhen_no_agents = \"unavailable\"\n").await;
    let h = s.handover(&s.visitor().await).await;
    assert_eq!(h.state, ConversationState::Unavailable);
    assert!(h.session.is_none());

    let s = start("").await; // default policy: queue with the "no agents" text
    let h = s.handover(&s.visitor().await).await;
    assert!(matches!(
        h.state,
        ConversationState::Queued {
            agents_online: Some(false),
            ..
        }
    ));
    assert!(h.message.starts_with("There are no agents available"));
}

/// The next status frame.
async fn told(ws: &mut Ws) -> baton_protocol::status::OffloadStatus {
    let VisitorServerFrame::Status { status } = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Status { .. }))
        .await
    else {
        unreachable!()
    };
    status
}

#[tokio::test]
async fn a_queued_visitor_hears_when_agents_come_and_go() {
    agents_come_and_go(&start(crate::access::GRACE_1S).await).await;
}

#[tokio::test]
async fn a_queued_visitor_hears_when_agents_come_and_go_on_postgres_and_nats() {
    let s = start_with(
        Backend::PostgresNats,
        crate::access::GRACE_1S,
        Deps::default(),
    )
    .await;
    agents_come_and_go(&s).await;
    s.stop().await;
}

async fn agents_come_and_go(s: &TestServer) {
    let v = s.visitor().await;
    let h = s.handover(&v).await;
    assert!(h.message.starts_with("There are no agents available"));
    let mut ws = s.visitor_ws(&v, h.session.unwrap().head_seq).await;
    let first = told(&mut ws).await;
    assert_eq!(first.agents_online, Some(false));
    // An agent opens the console: the waiting visitor is told at once, with the text for it.
    let login = s.login().await;
    let agent = s.agent_ws(&login.token).await;
    let now = told(&mut ws).await;
    assert_eq!(now.agents_online, Some(true));
    assert_eq!(
        now.message.as_deref(),
        Some(
            "Please wait for a couple of minutes while a live agent connects to this chat session."
        )
    );
    // The console closes: back to "no agents" once the grace period for reloads is over.
    drop(agent);
    let later = told(&mut ws).await;
    assert_eq!(later.agents_online, Some(false));
    assert!(
        later
            .message
            .unwrap()
            .starts_with("There are no agents available")
    );
}

#[tokio::test]
async fn a_queued_visitor_can_cancel() {
    let s = start("").await;
    let visitor = s.visitor().await;
    let session = s.handover(&visitor).await.session.unwrap();
    let mut v = s.visitor_ws(&visitor, session.head_seq).await;
    v.send(&VisitorFrame::Cancel).await;
    v.recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Event { event } if event.body == EventBody::HandoverCancelled)).await;
    let conv = s
        .service()
        .store
        .conversation(&session.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.view.state, ConversationState::Bot);
    assert_eq!(conv.handover.unwrap().outcome, "cancelled");
}
