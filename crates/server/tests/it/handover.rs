//! The handover, end to end over real sockets: visitor → bot → person → agent → bot.

use baton_protocol::ids::ClientMsgId;
use baton_protocol::state::{ConversationState, EndedBy};
use baton_protocol::status::OffloadState;
use baton_protocol::ws::*;
use serde_json::json;

use crate::harness::{Ws, start};

fn message_text(e: &Event) -> Option<(&Role, &str)> {
    match &e.body {
        EventBody::Message { role, text, .. } => Some((role, text.as_str())),
        _ => None,
    }
}

#[tokio::test]
async fn visitor_reaches_an_agent_and_returns_to_the_bot() {
    let s = start("").await;
    let login = s.login().await;
    let mut agent =
        Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token))).await;
    let AgentServerFrame::Welcome { waiting, .. } = agent.recv().await else {
        panic!("welcome first")
    };
    assert!(waiting.is_empty());

    // The bot phase, recorded as the transcript the agent will see.
    s.bot("v_flow", "hello").await;
    let h = s.handover("v_flow").await;
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

    // Asking twice is idempotent: same conversation, same token.
    let again = s.handover("v_flow").await;
    assert_eq!(
        again.session.as_ref().map(|x| &x.token),
        Some(&session.token)
    );

    let mut visitor =
        Ws::connect(&s.ws_url(&format!("/api/v1/visitor/ws?token={}", session.token))).await;
    visitor
        .send(&VisitorFrame::Hello {
            last_seq: session.head_seq,
        })
        .await;
    let VisitorServerFrame::Welcome {
        state, head_seq, ..
    } = visitor.recv().await
    else {
        panic!("welcome first")
    };
    assert!(matches!(state, ConversationState::Queued { .. }));
    assert_eq!(head_seq, session.head_seq);
    let VisitorServerFrame::Queue { position } = visitor.recv().await else {
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
        .running
        .service
        .events_after(&session.conversation_id, 0, 1000)
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
    let answer = s.bot("v_flow", "hello again").await;
    assert!(answer[0].text.as_ref().unwrap().contains("demo assistant"));
    let conv = s
        .running
        .service
        .conversation(&session.conversation_id)
        .unwrap();
    assert_eq!(conv.state, ConversationState::Bot);

    // The agent can no longer write into it.
    agent
        .send(&AgentFrame::Message {
            conversation_id: session.conversation_id.clone(),
            client_msg_id: ClientMsgId::from("a2"),
            text: "still there?".into(),
        })
        .await;
    let AgentServerFrame::Error { code, .. } = agent
        .recv_until(|f| matches!(f, AgentServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::InvalidState);
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
    s.bot("v_two", "hi").await;
    let id = s.handover("v_two").await.session.unwrap().conversation_id;
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
    let AgentServerFrame::Error { code, message } = b
        .recv_until(|f| matches!(f, AgentServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::Conflict);
    assert!(message.contains('A'), "{message}");
}

#[tokio::test]
async fn offloading_disabled_keeps_the_bot() {
    let s =
        start("[offloading]\nenabled = false\n[texts]\ndisabled = \"Switched off today.\"\n").await;
    s.bot("v_dis", "hi").await;
    let h = s.handover("v_dis").await;
    assert_eq!(h.state, ConversationState::Disabled);
    assert_eq!(h.message, "Switched off today.");
    assert_eq!(h.status.state, OffloadState::Disabled);
    assert!(h.session.is_none(), "no agent socket when disabled");
    // The bot still answers, and the conversation is back with it.
    assert!(
        s.bot("v_dis", "hello").await[0]
            .text
            .as_ref()
            .unwrap()
            .contains("demo assistant")
    );
    let status: serde_json::Value = s
        .http
        .get(s.url("/api/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "disabled");
}

#[tokio::test]
async fn outside_opening_hours_is_closed_with_the_next_opening() {
    // A window that is never "now": one minute on one weekday would still be flaky near that
    // minute, so use a window on every day that closes right after it opens, at a time
    // computed to be in the future relative to now.
    let now_min = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        % 1440) as i64;
    let open = (now_min + 120) % 1380; // two hours ahead, leaving room for a 1-minute window
    let window = format!(
        "daily {:02}:{:02}-{:02}:{:02}",
        open / 60,
        open % 60,
        (open + 1) / 60,
        (open + 1) % 60
    );
    let s = start(&format!(
        "[offloading]\nhours = [\"{window}\"]\nutc_offset = \"+00:00\"\n"
    ))
    .await;
    let h = s.handover("v_closed").await;
    let ConversationState::Closed {
        next_open_at: Some(next),
    } = &h.state
    else {
        panic!("{h:?}")
    };
    assert!(
        next.ends_with(&format!("T{:02}:{:02}:00+00:00", open / 60, open % 60)),
        "{next}"
    );
    assert_eq!(h.status.state, OffloadState::Closed);
    assert!(h.session.is_none());
}

#[tokio::test]
async fn with_nobody_online_the_policy_decides() {
    let s = start("[offloading]\nwhen_no_agents = \"unavailable\"\n").await;
    let h = s.handover("v_alone").await;
    assert_eq!(h.state, ConversationState::Unavailable);
    assert!(h.session.is_none());

    let s = start("").await; // default policy: queue with the "no agents" text
    let h = s.handover("v_alone").await;
    assert!(matches!(
        h.state,
        ConversationState::Queued {
            agents_online: Some(false),
            ..
        }
    ));
    assert!(h.message.starts_with("There are no agents available"));
}

#[tokio::test]
async fn a_queued_visitor_can_cancel() {
    let s = start("").await;
    let session = s.handover("v_cancel").await.session.unwrap();
    let mut v =
        Ws::connect(&s.ws_url(&format!("/api/v1/visitor/ws?token={}", session.token))).await;
    v.send(&VisitorFrame::Hello {
        last_seq: session.head_seq,
    })
    .await;
    v.send(&VisitorFrame::Cancel).await;
    v.recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Event { event } if event.body == EventBody::HandoverCancelled)).await;
    assert_eq!(
        s.running
            .service
            .conversation(&session.conversation_id)
            .unwrap()
            .state,
        ConversationState::Bot
    );
}
