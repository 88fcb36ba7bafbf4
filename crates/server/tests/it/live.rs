//! The live side of an agent chat: typing indicators both ways and read receipts ("Seen"),
//! on one server and across two replicas (the agent on one, the visitor on the other).

use baton_protocol::ids::{ClientMsgId, ConversationId};
use baton_protocol::ws::*;

use crate::harness::{Backend, TestServer, Visitor, Ws, queued_visitor, replica_of, start_with};

const STAFF: &str = r#"
[[agents]]
email = "dana@x"
name = "Dana"
password = "pw-dana"

[[agents]]
email = "sam@x"
name = "Sam"
password = "pw-sam"
"#;

/// `console` takes `id`.
pub async fn accept(console: &mut Ws, id: &ConversationId) {
    console
        .send(&AgentFrame::Accept {
            conversation_id: id.clone(),
        })
        .await;
    console
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await;
}

/// `console` writes in `id`; returns the seq it is stored at.
pub async fn agent_says(console: &mut Ws, id: &ConversationId, key: &str, text: &str) -> u64 {
    console
        .send(&AgentFrame::Message {
            conversation_id: id.clone(),
            client_msg_id: ClientMsgId::from(key),
            text: text.into(),
        })
        .await;
    match console
        .recv_until(|f: &AgentServerFrame| {
            matches!(
                f,
                AgentServerFrame::Ack { .. } | AgentServerFrame::Error { .. }
            )
        })
        .await
    {
        AgentServerFrame::Ack { seq, .. } => seq,
        other => panic!("not stored: {other:?}"),
    }
}

/// The visitor writes over its socket; returns the seq it is stored at.
async fn visitor_says(ws: &mut Ws, key: &str, text: &str) -> u64 {
    ws.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from(key),
        text: text.into(),
    })
    .await;
    match ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Ack { .. }))
        .await
    {
        VisitorServerFrame::Ack { seq, .. } => seq,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn typing_and_seen_reach_the_other_side() {
    let s = start_with(Backend::Sqlite, STAFF, Default::default()).await;
    typing_and_seen(&s, &s).await;
    s.stop().await;
}

#[tokio::test]
async fn typing_and_seen_cross_replicas_on_postgres_and_nats() {
    let a = start_with(Backend::PostgresNats, STAFF, Default::default()).await;
    let b = replica_of(&a, STAFF).await;
    // The agent on replica a, the visitor on replica b.
    typing_and_seen(&a, &b).await;
    b.stop().await;
    a.stop().await;
}

async fn typing_and_seen(agents: &TestServer, visitors: &TestServer) {
    let dana = agents.login_as("dana@x", "pw-dana").await;
    let mut console = agents.agent_ws(&dana.token).await;
    let (v, id, mut ws) = queued_visitor(visitors, "hello").await;
    accept(&mut console, &id).await;

    // Dana types: the visitor hears who. Twice at once counts once (the server lets one
    // notice through per second), so the next frame after it is Dana's message.
    console
        .send(&AgentFrame::Typing {
            conversation_id: id.clone(),
        })
        .await;
    console
        .send(&AgentFrame::Typing {
            conversation_id: id.clone(),
        })
        .await;
    let typing = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Typing { .. }))
        .await;
    assert!(
        matches!(&typing, VisitorServerFrame::Typing { agent } if agent.name == "Dana"),
        "{typing:?}"
    );
    let said = agent_says(&mut console, &id, "d1", "Hi, I'm Dana.").await;
    let next: VisitorServerFrame = ws.recv().await;
    assert!(
        matches!(&next, VisitorServerFrame::Event { event } if event.seq == said),
        "one typing notice, then the message: {next:?}"
    );

    // The visitor types: Dana's console hears it for this conversation.
    ws.send(&VisitorFrame::Typing).await;
    let typing = console
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Typing { .. }))
        .await;
    assert_eq!(
        typing,
        AgentServerFrame::Typing {
            conversation_id: id.clone()
        }
    );

    // Sam does not have the chat: his typing and reading are refused, and reach nobody.
    let sam = agents.login_as("sam@x", "pw-sam").await;
    let mut sam_console = agents.agent_ws(&sam.token).await;
    for frame in [
        AgentFrame::Typing {
            conversation_id: id.clone(),
        },
        AgentFrame::Read {
            conversation_id: id.clone(),
            seq: said,
        },
    ] {
        sam_console.send(&frame).await;
        let refused = sam_console
            .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Error { .. }))
            .await;
        assert!(
            matches!(
                refused,
                AgentServerFrame::Error {
                    code: ErrorCode::InvalidState,
                    ..
                }
            ),
            "{refused:?}"
        );
    }

    // The visitor has read Dana's line: Dana reads "Seen".
    ws.send(&VisitorFrame::Read { seq: said }).await;
    let read = console
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Read { .. }))
        .await;
    assert_eq!(
        read,
        AgentServerFrame::Read {
            conversation_id: id.clone(),
            seq: said
        }
    );
    // A mark past the log, or back, moves nothing and tells nobody.
    ws.send(&VisitorFrame::Read { seq: said + 100 }).await;
    ws.send(&VisitorFrame::Read { seq: 1 }).await;

    // The visitor writes; Dana reads it: the visitor reads "Seen".
    let asked = visitor_says(&mut ws, "v1", "Where is my order?").await;
    console
        .send(&AgentFrame::Read {
            conversation_id: id.clone(),
            seq: asked,
        })
        .await;
    let read = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Read { .. }))
        .await;
    assert_eq!(read, VisitorServerFrame::Read { seq: asked });
    // Dana's console heard nothing of the refused marks: the next news is a real message.
    let next = visitor_says(&mut ws, "v2", "It was order 12.").await;
    let after = console
        .recv_until(|f: &AgentServerFrame| {
            matches!(
                f,
                AgentServerFrame::Read { .. } | AgentServerFrame::Event { .. }
            )
        })
        .await;
    assert!(
        matches!(&after, AgentServerFrame::Event { event, .. } if event.seq >= asked),
        "no read mark past the log or back: {after:?}"
    );

    // Both marks are kept: a reconnecting widget and a reloaded console get them.
    drop(ws);
    let mut again = visitors.visitor_ws(&v, next).await;
    let welcome: VisitorServerFrame = again.recv().await;
    assert!(
        matches!(welcome, VisitorServerFrame::Welcome { read_seq, .. } if read_seq == asked),
        "{welcome:?}"
    );
    drop(console);
    let mut reloaded = agents.agent_ws(&dana.token).await;
    reloaded
        .send(&AgentFrame::Open {
            conversation_id: id.clone(),
        })
        .await;
    let transcript = reloaded
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await;
    assert!(
        matches!(transcript, AgentServerFrame::Transcript { visitor_read_seq, .. } if visitor_read_seq == said),
        "{transcript:?}"
    );
    drop((again, reloaded, sam_console));
}

const TEAM: &str = r#"
[[agents]]
email = "dana@x"
name = "Dana"
password = "pw-dana"

[[agents]]
email = "sam@x"
name = "Sam"
password = "pw-sam"

[[agents]]
email = "kim@x"
name = "Kim"
password = "pw-kim"
queues = ["billing"]

[[agents]]
email = "sue@x"
name = "Sue"
password = "pw-sue"
role = "supervisor"
"#;

/// The next frame that `pick` takes, skipping others.
async fn next<T>(ws: &mut Ws, pick: impl Fn(AgentServerFrame) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + crate::harness::WAIT;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f: AgentServerFrame = tokio::time::timeout(remaining, ws.recv())
            .await
            .expect("the frame in time");
        if let Some(t) = pick(f) {
            return t;
        }
    }
}

async fn refused(ws: &mut Ws) -> (ErrorCode, String) {
    next(ws, |f| match f {
        AgentServerFrame::Error { code, message, .. } => Some((code, message)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_chat_goes_to_another_agent_who_accepts_or_declines() {
    let s = start_with(Backend::Sqlite, TEAM, Default::default()).await;
    transferred_to_an_agent(&s, &s).await;
    s.stop().await;
}

#[tokio::test]
async fn a_chat_goes_to_an_agent_on_another_replica_on_postgres_and_nats() {
    let a = start_with(Backend::PostgresNats, TEAM, Default::default()).await;
    let b = replica_of(&a, TEAM).await;
    // Dana and the visitor on replica a, Sam on replica b.
    transferred_to_an_agent(&a, &b).await;
    b.stop().await;
    a.stop().await;
}

async fn transferred_to_an_agent(a: &TestServer, b: &TestServer) {
    let dana = a.login_as("dana@x", "pw-dana").await;
    let mut dana_ws = a.agent_ws(&dana.token).await;
    let sam = b.login_as("sam@x", "pw-sam").await;
    let mut sam_ws = b.agent_ws(&sam.token).await;
    let (_v, id, mut ws) = queued_visitor(a, "hello").await;
    accept(&mut dana_ws, &id).await;
    agent_says(&mut dana_ws, &id, "d1", "Hi, I'm Dana.").await;
    let sam_id = sam.agent.id.clone();
    let offer_to_sam = |note: &str| AgentFrame::Transfer {
        conversation_id: id.clone(),
        to: Some(sam_id.clone()),
        queue: None,
        note: Some(note.into()),
    };

    // Not to herself, not to nobody, not to an agent who is offline.
    dana_ws
        .send(&AgentFrame::Transfer {
            conversation_id: id.clone(),
            to: Some(dana.agent.id.clone()),
            queue: None,
            note: None,
        })
        .await;
    assert_eq!(refused(&mut dana_ws).await.0, ErrorCode::BadRequest);
    dana_ws
        .send(&AgentFrame::Transfer {
            conversation_id: id.clone(),
            to: None,
            queue: None,
            note: None,
        })
        .await;
    assert_eq!(refused(&mut dana_ws).await.0, ErrorCode::BadRequest);
    let kim = a.login_as("kim@x", "pw-kim").await;
    dana_ws
        .send(&AgentFrame::Transfer {
            conversation_id: id.clone(),
            to: Some(kim.agent.id.clone()),
            queue: None,
            note: None,
        })
        .await;
    let (code, message) = refused(&mut dana_ws).await;
    assert_eq!(
        (code, message.as_str()),
        (ErrorCode::InvalidState, "Kim is offline")
    );

    // Sam is offered the chat with Dana's note, and declines: Dana hears it, and nothing
    // changes for the visitor.
    dana_ws.send(&offer_to_sam("Wants a refund")).await;
    let made = next(&mut dana_ws, |f| match f {
        AgentServerFrame::Offered { to, .. } => Some(to.name),
        _ => None,
    })
    .await;
    assert_eq!(made, "Sam", "Dana hears the offer is made");
    let offer = next(&mut sam_ws, |f| match f {
        AgentServerFrame::Offer { offer } => Some(offer),
        _ => None,
    })
    .await;
    assert_eq!(offer.conversation.conversation_id, id);
    assert_eq!(offer.from.name, "Dana");
    assert_eq!(offer.note.as_deref(), Some("Wants a refund"));
    assert_eq!(offer.conversation.preview.as_deref(), Some("hello"));
    sam_ws
        .send(&AgentFrame::TransferAnswer {
            conversation_id: id.clone(),
            accept: false,
        })
        .await;
    let ended = next(&mut dana_ws, |f| match f {
        AgentServerFrame::OfferEnded { to, outcome, .. } => Some((to.name, outcome)),
        _ => None,
    })
    .await;
    assert_eq!(ended, ("Sam".to_owned(), OfferOutcome::Declined));
    // Declined once is not accepted later.
    sam_ws
        .send(&AgentFrame::TransferAnswer {
            conversation_id: id.clone(),
            accept: true,
        })
        .await;
    assert_eq!(refused(&mut sam_ws).await.0, ErrorCode::NotFound);

    // Offered again, after a reload of Sam's console: the offer is still there, and he takes
    // the chat with its whole transcript.
    dana_ws.send(&offer_to_sam("Wants a refund, VIP")).await;
    next(&mut sam_ws, |f| {
        matches!(f, AgentServerFrame::Offer { .. }).then_some(())
    })
    .await;
    drop(sam_ws);
    let mut sam_ws = Ws::connect(&b.ws_url(&format!("/api/v1/agent/ws?token={}", sam.token))).await;
    let offers = next(&mut sam_ws, |f| match f {
        AgentServerFrame::Welcome { offers, .. } => Some(offers),
        _ => None,
    })
    .await;
    assert_eq!(offers.len(), 1, "the open offer comes with the welcome");
    assert_eq!(offers[0].note.as_deref(), Some("Wants a refund, VIP"));
    sam_ws
        .send(&AgentFrame::TransferAnswer {
            conversation_id: id.clone(),
            accept: true,
        })
        .await;
    let events = next(&mut sam_ws, |f| match f {
        AgentServerFrame::Transcript { events, .. } => Some(events),
        _ => None,
    })
    .await;
    let said: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(said[0], "hello");
    assert!(said.contains(&"Hi, I'm Dana."), "{said:?}");
    assert!(
        events.iter().any(|e| matches!(&e.body,
            EventBody::Transferred { from, to: Some(to), note: Some(note), .. }
                if from.name == "Dana" && to.name == "Sam" && note == "Wants a refund, VIP")),
        "the agents see who, to whom and the note"
    );
    let ended = next(&mut dana_ws, |f| match f {
        AgentServerFrame::OfferEnded { to, outcome, .. } => Some((to.name, outcome)),
        _ => None,
    })
    .await;
    assert_eq!(ended, ("Sam".to_owned(), OfferOutcome::Taken));

    // The visitor is told who takes over, and never reads the note.
    let mut told = None;
    loop {
        let VisitorServerFrame::Event { event } = ws.recv::<VisitorServerFrame>().await else {
            continue;
        };
        match event.body {
            EventBody::Message {
                role: Role::System,
                text,
                ..
            } => told = Some(text),
            EventBody::Transferred { to, note, .. } => {
                assert_eq!(to.map(|t| t.name).as_deref(), Some("Sam"));
                assert_eq!(note, None, "the note is for agents");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        told.as_deref(),
        Some("Dana has handed your chat to Sam, who can see everything you wrote.")
    );

    // Sam has it now; Dana no longer does.
    agent_says(&mut sam_ws, &id, "s1", "Sam here, I'll sort it.").await;
    dana_ws
        .send(&AgentFrame::Message {
            conversation_id: id.clone(),
            client_msg_id: ClientMsgId::from("d2"),
            text: "still me?".into(),
        })
        .await;
    assert_eq!(refused(&mut dana_ws).await.0, ErrorCode::InvalidState);

    // An offer ends with the chat: Sam offers it to Dana, then ends it.
    sam_ws
        .send(&AgentFrame::Transfer {
            conversation_id: id.clone(),
            to: Some(dana.agent.id.clone()),
            queue: None,
            note: None,
        })
        .await;
    next(&mut dana_ws, |f| {
        matches!(f, AgentServerFrame::Offer { .. }).then_some(())
    })
    .await;
    sam_ws
        .send(&AgentFrame::End {
            conversation_id: id.clone(),
        })
        .await;
    let ended = next(&mut dana_ws, |f| match f {
        AgentServerFrame::OfferEnded {
            conversation_id,
            outcome,
            ..
        } => Some((conversation_id, outcome)),
        _ => None,
    })
    .await;
    assert_eq!(ended, (id.clone(), OfferOutcome::Withdrawn));
    dana_ws
        .send(&AgentFrame::TransferAnswer {
            conversation_id: id.clone(),
            accept: true,
        })
        .await;
    assert_eq!(refused(&mut dana_ws).await.0, ErrorCode::NotFound);
    drop((ws, dana_ws, sam_ws));
}

#[tokio::test]
async fn a_chat_goes_back_to_another_queue_and_its_agents_take_it() {
    let s = start_with(Backend::Sqlite, TEAM, Default::default()).await;
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut dana_ws = s.agent_ws(&dana.token).await;
    let kim = s.login_as("kim@x", "pw-kim").await;
    let mut kim_ws = s.agent_ws(&kim.token).await;
    let (_v, id, mut ws) = queued_visitor(&s, "my invoice is wrong").await;
    accept(&mut dana_ws, &id).await;
    dana_ws
        .send(&AgentFrame::Transfer {
            conversation_id: id.clone(),
            to: None,
            queue: Some("billing".into()),
            note: Some("Invoice 42 is doubled".into()),
        })
        .await;
    // Kim serves billing: the chat waits for her now.
    let waiting = next(&mut kim_ws, |f| match f {
        AgentServerFrame::Waiting { conversation } => Some(conversation),
        _ => None,
    })
    .await;
    assert_eq!(waiting.conversation_id, id);
    assert_eq!(waiting.queue.as_deref(), Some("billing"));
    // The visitor is told, and waits again.
    let mut told = None;
    loop {
        match ws.recv::<VisitorServerFrame>().await {
            VisitorServerFrame::Event { event } => match event.body {
                EventBody::Message {
                    role: Role::System,
                    text,
                    ..
                } => told = Some(text),
                EventBody::Transferred { queue, .. } => {
                    assert_eq!(queue.as_deref(), Some("billing"));
                    break;
                }
                _ => {}
            },
            _ => continue,
        }
    }
    assert!(
        told.as_deref()
            .is_some_and(|t| t.starts_with("Dana has passed your chat on to a colleague.")),
        "{told:?}"
    );
    let position = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Queue { .. }))
        .await;
    assert!(
        matches!(
            position,
            VisitorServerFrame::Queue {
                position: Some(1),
                ..
            }
        ),
        "{position:?}"
    );
    // Kim takes it, with the note.
    kim_ws
        .send(&AgentFrame::Accept {
            conversation_id: id.clone(),
        })
        .await;
    let events = next(&mut kim_ws, |f| match f {
        AgentServerFrame::Transcript { events, .. } => Some(events),
        _ => None,
    })
    .await;
    assert!(events.iter().any(|e| matches!(&e.body,
        EventBody::Transferred { note: Some(n), queue: Some(q), .. } if n == "Invoice 42 is doubled" && q == "billing")));
    ws.recv_until(|f: &VisitorServerFrame| {
        matches!(f, VisitorServerFrame::Event { event } if matches!(&event.body, EventBody::AgentJoined { agent } if agent.name == "Kim"))
    })
    .await;
    drop((ws, dana_ws, kim_ws));
    s.stop().await;
}

/// The `team` frames of a console (made with `connect_with_team`).
async fn team(ws: &mut Ws) -> (Vec<TeamMember>, Vec<String>, Vec<ConversationSummary>) {
    next(ws, |f| match f {
        AgentServerFrame::Team {
            agents,
            queues,
            chats,
        } => Some((agents, queues, chats)),
        _ => None,
    })
    .await
}

fn presence_of(agents: &[TeamMember], name: &str) -> (Presence, u32, u32) {
    let m = agents
        .iter()
        .find(|m| m.agent.name == name)
        .unwrap_or_else(|| panic!("{name} is on the team"));
    (m.presence, m.chats, m.max_chats)
}

#[tokio::test]
async fn away_and_full_agents_are_not_counted_and_supervisors_see_the_team() {
    let cfg = format!("{TEAM}\n[offloading]\nmax_chats = 1\n");
    let s = start_with(Backend::Sqlite, &cfg, Default::default()).await;
    away_and_full(&s, &s).await;
    s.stop().await;
}

#[tokio::test]
async fn away_and_full_agents_count_across_replicas_on_postgres_and_nats() {
    let cfg = format!("{TEAM}\n[offloading]\nmax_chats = 1\n");
    let a = start_with(Backend::PostgresNats, &cfg, Default::default()).await;
    let b = replica_of(&a, &cfg).await;
    // The agents on replica a, the visitors on replica b.
    away_and_full(&a, &b).await;
    b.stop().await;
    a.stop().await;
}

async fn away_and_full(s: &TestServer, visitors: &TestServer) {
    let sue = s.login_as("sue@x", "pw-sue").await;
    let mut sue_ws =
        Ws::connect_with_team(&s.ws_url(&format!("/api/v1/agent/ws?token={}", sue.token))).await;
    let (agents, queues, chats) = team(&mut sue_ws).await;
    assert_eq!(presence_of(&agents, "Sue"), (Presence::Online, 0, 1));
    assert_eq!(presence_of(&agents, "Dana").0, Presence::Offline);
    assert!(queues.contains(&"billing".to_owned()) && queues.contains(&"default".to_owned()));
    assert!(chats.is_empty());
    // Sue is away: she does not count for a visitor asking now.
    sue_ws.send(&AgentFrame::Presence { away: true }).await;
    loop {
        let (agents, ..) = team(&mut sue_ws).await;
        if presence_of(&agents, "Sue").0 == Presence::Away {
            break;
        }
    }
    let (_v, id, mut ws) = queued_visitor(visitors, "hello").await;
    let status = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Status { .. }))
        .await;
    assert!(
        matches!(&status, VisitorServerFrame::Status { status } if status.agents_online == Some(false)),
        "{status:?}"
    );
    // Dana comes: agents online; she takes the chat and is full (max_chats = 1): nobody
    // available again for the next visitor.
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut dana_ws =
        Ws::connect_with_team(&s.ws_url(&format!("/api/v1/agent/ws?token={}", dana.token))).await;
    ws.recv_until(|f: &VisitorServerFrame| {
        matches!(f, VisitorServerFrame::Status { status } if status.agents_online == Some(true))
    })
    .await;
    dana_ws
        .send(&AgentFrame::Accept {
            conversation_id: id.clone(),
        })
        .await;
    next(&mut dana_ws, |f| {
        matches!(f, AgentServerFrame::Transcript { .. }).then_some(())
    })
    .await;
    let (_w, other, mut other_ws) = queued_visitor(visitors, "hi there").await;
    let status = other_ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Status { .. }))
        .await;
    assert!(
        matches!(&status, VisitorServerFrame::Status { status } if status.agents_online == Some(false)),
        "Dana is full: {status:?}"
    );
    // One more is refused, with the reason.
    dana_ws
        .send(&AgentFrame::Accept {
            conversation_id: other.clone(),
        })
        .await;
    let (code, message) = refused(&mut dana_ws).await;
    assert_eq!(code, ErrorCode::Conflict);
    assert!(message.contains("1 chats open, your limit"), "{message}");

    // Sue sees every agent's presence and load, and the live chat with its agent; Dana,
    // not a supervisor, sees the team but no one's chats.
    let (agents, chats) = loop {
        let (agents, _, chats) = team(&mut sue_ws).await;
        if presence_of(&agents, "Dana") == (Presence::Online, 1, 1) && !chats.is_empty() {
            break (agents, chats);
        }
    };
    assert_eq!(presence_of(&agents, "Sue").0, Presence::Away);
    assert_eq!(presence_of(&agents, "Sam").0, Presence::Offline);
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].conversation_id, id);
    assert!(
        matches!(&chats[0].state, baton_protocol::state::ConversationState::AgentJoined { agent } if agent.name == "Dana")
    );
    let (_, _, dana_chats) = team(&mut dana_ws).await;
    assert!(dana_chats.is_empty(), "only supervisors see every chat");

    // Sue reads Dana's chat as it happens, and cannot write in it.
    sue_ws
        .send(&AgentFrame::Open {
            conversation_id: id.clone(),
        })
        .await;
    next(&mut sue_ws, |f| {
        matches!(f, AgentServerFrame::Transcript { .. }).then_some(())
    })
    .await;
    let said = agent_says(&mut dana_ws, &id, "d1", "Dana here.").await;
    let live = next(&mut sue_ws, |f| match f {
        AgentServerFrame::Event { event, .. } => Some(event.seq),
        _ => None,
    })
    .await;
    assert_eq!(live, said);
    sue_ws
        .send(&AgentFrame::Message {
            conversation_id: id.clone(),
            client_msg_id: ClientMsgId::from("sue1"),
            text: "Supervisor here".into(),
        })
        .await;
    assert_eq!(refused(&mut sue_ws).await.0, ErrorCode::InvalidState);
    // Away lasts for the sitting: a new login starts online.
    s.login_as("sue@x", "pw-sue").await;
    loop {
        let (agents, ..) = team(&mut sue_ws).await;
        if presence_of(&agents, "Sue").0 == Presence::Online {
            break;
        }
    }
    drop((ws, other_ws, sue_ws, dana_ws));
}

#[tokio::test]
async fn two_accepts_at_once_never_pass_the_limit() {
    at_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_accepts_at_once_never_pass_the_limit_on_postgres() {
    at_once(Backend::PostgresNats).await;
}

/// Dana, limited to one chat, accepts two chats at the same instant from two consoles:
/// one is hers, the other is refused.
async fn at_once(backend: Backend) {
    let cfg = format!("{TEAM}\n[offloading]\nmax_chats = 1\n");
    let s = start_with(backend, &cfg, Default::default()).await;
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut one = s.agent_ws(&dana.token).await;
    let mut two = s.agent_ws(&dana.token).await;
    let (_v, first, _ws1) = queued_visitor(&s, "one").await;
    let (_w, second, _ws2) = queued_visitor(&s, "two").await;
    let (take_first, take_second) = (
        AgentFrame::Accept {
            conversation_id: first.clone(),
        },
        AgentFrame::Accept {
            conversation_id: second.clone(),
        },
    );
    tokio::join!(one.send(&take_first), two.send(&take_second));
    let outcome = |f: AgentServerFrame| match f {
        AgentServerFrame::Transcript { .. } => Some(true),
        AgentServerFrame::Error { .. } => Some(false),
        _ => None,
    };
    let (x, y) = tokio::join!(next(&mut one, outcome), next(&mut two, outcome));
    assert!(x ^ y, "exactly one accept passes: {x} {y}");
    let loads = s.service().store.agent_loads().await.unwrap();
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0].1, 1);
    drop((one, two));
    s.stop().await;
}

#[tokio::test]
async fn a_visitor_rates_an_ended_agent_chat_and_supervisors_read_the_ratings() {
    let s = start_with(Backend::Sqlite, TEAM, Default::default()).await;
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut dana_ws = s.agent_ws(&dana.token).await;
    let (v, id, ws) = queued_visitor(&s, "hello").await;
    let rate = |stars: u8, comment: Option<&str>, who: &Visitor| serde_json::json!({"visitor_id": who.id, "stars": stars, "comment": comment});
    // Nothing to rate while waiting.
    let (status, body) = s
        .post_as("/api/v1/visitor/rating", Some(&v.token), &rate(5, None, &v))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("invalid_state"))
    );
    accept(&mut dana_ws, &id).await;
    agent_says(&mut dana_ws, &id, "d1", "All sorted.").await;
    // Nor during the chat.
    let (status, _) = s
        .post_as("/api/v1/visitor/rating", Some(&v.token), &rate(5, None, &v))
        .await;
    assert_eq!(status, 409);
    dana_ws
        .send(&AgentFrame::End {
            conversation_id: id.clone(),
        })
        .await;
    crate::harness::eventually("the chat ended", || async {
        let c = s.service().store.conversation(&id).await.unwrap()?;
        matches!(
            c.view.state,
            baton_protocol::state::ConversationState::Ended { .. }
        )
        .then_some(())
    })
    .await;

    // Bad input gets a clear refusal and stores nothing.
    let other = s.visitor().await;
    for (token, body, code, error) in [
        (None, rate(5, None, &v), 401, "unauthorized"),
        (Some(&v.token), rate(0, None, &v), 400, "bad_request"),
        (Some(&v.token), rate(6, None, &v), 400, "bad_request"),
        (
            Some(&v.token),
            rate(4, Some(&"x".repeat(1001)), &v),
            400,
            "bad_request",
        ),
        (Some(&v.token), rate(4, None, &other), 403, "forbidden"),
        (
            Some(&other.token),
            rate(4, None, &other),
            409,
            "invalid_state",
        ),
    ] {
        let (status, answer) = s
            .post_as("/api/v1/visitor/rating", token.map(String::as_str), &body)
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (code, Some(error)),
            "{body} → {answer}"
        );
    }
    let (status, _) = s
        .post_as(
            "/api/v1/visitor/rating",
            Some(&v.token),
            &rate(3, Some("Took a while"), &v),
        )
        .await;
    assert_eq!(status, 204);
    // Rated again: the rating is replaced, not added.
    let (status, _) = s
        .post_as(
            "/api/v1/visitor/rating",
            Some(&v.token),
            &rate(5, Some("  Dana was great <b>really</b>  "), &v),
        )
        .await;
    assert_eq!(status, 204);

    // An agent may not read them; a supervisor may; nobody without a session.
    let get = |token: Option<String>| {
        let req = s.http.get(s.url("/api/v1/ratings"));
        async move {
            let req = match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            };
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    assert_eq!(get(None).await.0, 401);
    assert_eq!(get(Some(dana.token.clone())).await.0, 403);
    let sue = s.login_as("sue@x", "pw-sue").await;
    let (status, body) = get(Some(sue.token.clone())).await;
    assert_eq!(status, 200, "{body}");
    let ratings: Ratings = serde_json::from_value(body).unwrap();
    assert_eq!(ratings.count, 1);
    assert_eq!(ratings.average, Some(5.0));
    assert_eq!(ratings.latest.len(), 1);
    let r = &ratings.latest[0];
    assert_eq!(
        (r.conversation_id.clone(), r.agent.name.as_str(), r.stars),
        (id.clone(), "Dana", 5)
    );
    assert_eq!(r.comment.as_deref(), Some("Dana was great <b>really</b>"));
    drop((ws, dana_ws));
    s.stop().await;
}

#[tokio::test]
async fn a_chat_is_not_handed_to_a_queue_nobody_serves() {
    let cfg = r#"
[[agents]]
email = "dana@x"
name = "Dana"
password = "pw-dana"
queues = ["default"]

[[agents]]
email = "kim@x"
name = "Kim"
password = "pw-kim"
queues = ["billing"]
"#;
    let s = start_with(Backend::Sqlite, cfg, Default::default()).await;
    let dana = s.login_as("dana@x", "pw-dana").await;
    let mut dana_ws = s.agent_ws(&dana.token).await;
    let (_v, id, ws) = queued_visitor(&s, "hello").await;
    accept(&mut dana_ws, &id).await;
    dana_ws
        .send(&AgentFrame::Transfer {
            conversation_id: id.clone(),
            to: None,
            queue: Some("biling".into()),
            note: None,
        })
        .await;
    let (code, message) = refused(&mut dana_ws).await;
    assert_eq!(
        (code, message.as_str()),
        (ErrorCode::NotFound, "there is no queue `biling`")
    );
    // Still Dana's: she can write.
    agent_says(&mut dana_ws, &id, "d1", "Still here.").await;
    drop((ws, dana_ws));
    s.stop().await;
}
