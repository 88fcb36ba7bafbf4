//! The live side of an agent chat: typing indicators both ways and read receipts ("Seen"),
//! on one server and across two replicas (the agent on one, the visitor on the other).

use baton_protocol::ids::{ClientMsgId, ConversationId};
use baton_protocol::ws::*;

use crate::harness::{Backend, TestServer, Visitor, Ws, replica_of, start_with};

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

/// A visitor that asked for a person and waits, with its socket open.
pub async fn queued_visitor(s: &TestServer, first: &str) -> (Visitor, ConversationId, Ws) {
    let v = s.visitor().await;
    s.bot(&v, first).await;
    let session = s.handover(&v).await.session.expect("queued");
    let ws = s.visitor_ws(&v, session.head_seq).await;
    (v, session.conversation_id, ws)
}

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
