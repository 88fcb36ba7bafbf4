//! Socket robustness: bad frames, bad tokens, reconnects, shutdown.

use baton_protocol::ids::ClientMsgId;
use baton_protocol::ws::*;

use crate::harness::{Ws, start};

#[tokio::test]
async fn unknown_frames_get_an_error_frame_and_the_socket_stays_usable() {
    let s = start("").await;
    let visitor = s.visitor().await;
    let session = s.handover(&visitor).await.session.unwrap();
    let mut v = s.visitor_ws(&visitor, session.head_seq).await;
    let _: VisitorServerFrame = v
        .recv_until(|f| matches!(f, VisitorServerFrame::Queue { .. }))
        .await;
    for bad in [
        "{not json",
        r#"{"type":"dance"}"#,
        r#"{"type":"message"}"#,
        "[]",
    ] {
        v.send_raw(bad).await;
        let VisitorServerFrame::Error { code, message, .. } = v.recv().await else {
            panic!("error frame for {bad}")
        };
        assert_eq!(code, ErrorCode::BadFrame, "{bad}");
        assert!(message.starts_with("not a valid frame"), "{message}");
    }
    let too_long = "x".repeat(baton_protocol::MAX_TEXT_BYTES + 1);
    v.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from("big"),
        text: too_long,
    })
    .await;
    let VisitorServerFrame::Error {
        code,
        client_msg_id,
        ..
    } = v.recv().await
    else {
        panic!()
    };
    assert_eq!(
        (code, client_msg_id.unwrap().as_str()),
        (ErrorCode::TooLarge, "big")
    );
    v.send(&VisitorFrame::Ping).await;
    assert_eq!(
        v.recv::<VisitorServerFrame>().await,
        VisitorServerFrame::Pong
    );

    let login = s.login().await;
    let mut a = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token))).await;
    let _welcome: AgentServerFrame = a.recv().await;
    let AgentServerFrame::Status { .. } = a.recv().await else {
        panic!("the offloading status follows the welcome")
    };
    a.send_raw(r#"{"type":"accept"}"#).await;
    // (A status frame may come between: this console coming online changed it.)
    let not_status = |f: &AgentServerFrame| !matches!(f, AgentServerFrame::Status { .. });
    let AgentServerFrame::Error { code, message, .. } = a.recv_until(not_status).await else {
        panic!()
    };
    assert_eq!(code, ErrorCode::BadFrame);
    assert!(message.contains("conversation_id"), "{message}");
    a.send(&AgentFrame::Ping).await;
    assert_eq!(a.recv_until(not_status).await, AgentServerFrame::Pong);
}

#[tokio::test]
async fn bad_tokens_and_logins_are_refused() {
    let s = start("").await;
    // A browser never sees the HTTP status of a failed upgrade, so the server accepts and
    // closes at once with 4401.
    for path in [
        "/api/v1/visitor/ws?token=nope",
        "/api/v1/agent/ws?token=nope",
    ] {
        let mut ws = Ws::connect(&s.ws_url(path)).await;
        assert_eq!(ws.closed_with().await, Some(4401), "{path}");
    }
    let (status, body) = s
        .post(
            "/api/v1/agent/login",
            &serde_json::json!({"email": "agent@baton.example", "password": "wrong"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn a_reconnecting_visitor_gets_what_it_missed_exactly_once() {
    let s = start("").await;
    let visitor = s.visitor().await;
    let session = s.handover(&visitor).await.session.unwrap();
    let login = s.login().await;
    let mut a = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token))).await;
    let _welcome: AgentServerFrame = a.recv().await;
    let AgentServerFrame::Status { .. } = a.recv().await else {
        panic!("the offloading status follows the welcome")
    };
    a.send(&AgentFrame::Accept {
        conversation_id: session.conversation_id.clone(),
    })
    .await;
    a.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await;

    let mut v = s.visitor_ws(&visitor, session.head_seq).await;
    let last_seen = match v.recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Event { event } if matches!(event.body, EventBody::AgentJoined { .. }))).await {
        VisitorServerFrame::Event { event } => event.seq,
        _ => unreachable!(),
    };
    drop(v); // the connection drops

    for i in 0..3 {
        a.send(&AgentFrame::Message {
            conversation_id: session.conversation_id.clone(),
            client_msg_id: ClientMsgId(format!("k{i}")),
            text: format!("while you were away {i}"),
        })
        .await;
        a.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Ack { .. }))
            .await;
    }

    let mut v = s.visitor_ws(&visitor, last_seen).await;
    let VisitorServerFrame::Welcome { head_seq, .. } = v.recv().await else {
        panic!()
    };
    assert_eq!(head_seq, last_seen + 3);
    let mut got = vec![];
    for _ in 0..3 {
        if let VisitorServerFrame::Event { event } = v
            .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Event { .. }))
            .await
        {
            got.push(event.seq);
        }
    }
    assert_eq!(got, vec![last_seen + 1, last_seen + 2, last_seen + 3]);
    v.send(&VisitorFrame::Ping).await;
    assert_eq!(
        v.recv::<VisitorServerFrame>().await,
        VisitorServerFrame::Pong,
        "nothing replayed twice"
    );
}

#[tokio::test]
async fn a_socket_must_say_hello_first() {
    let s = start("").await;
    let visitor = s.visitor().await;
    s.bot(&visitor, "hello").await;
    let mut v =
        Ws::connect(&s.ws_url(&format!("/api/v1/visitor/ws?token={}", visitor.token))).await;
    v.send(&VisitorFrame::Ping).await;
    let VisitorServerFrame::Error { code, .. } = v.recv().await else {
        panic!()
    };
    assert_eq!(code, ErrorCode::InvalidState);
    v.send(&VisitorFrame::Hello { last_seq: 0 }).await;
    let VisitorServerFrame::Welcome { .. } = v.recv().await else {
        panic!()
    };
    let VisitorServerFrame::Status { .. } = v.recv().await else {
        panic!("the offloading status after the welcome")
    };
    // With last_seq 0 the whole history is replayed from seq 1: the socket opens in every
    // state, so the bot phase is history too.
    let VisitorServerFrame::Event { event } = v.recv().await else {
        panic!()
    };
    assert_eq!(event.seq, 1);
    assert!(
        matches!(event.body, EventBody::Message { role: Role::Visitor, ref text, .. } if text == "hello")
    );
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let s = start("").await;
    let login = s.login().await;
    let mut a = Ws::connect(&s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token))).await;
    let _welcome: AgentServerFrame = a.recv().await;
    let AgentServerFrame::Status { .. } = a.recv().await else {
        panic!("the offloading status follows the welcome")
    };
    let stopping = tokio::spawn(s.running.stop());
    assert_eq!(a.closed_with().await, Some(1001));
    drop(a);
    stopping.await.unwrap().unwrap();
}
