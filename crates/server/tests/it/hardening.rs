//! What probing found, each with its test: slow and silent clients, connection limits,
//! frame and body limits, error bodies, idempotency keys, and queue fan-out.

use std::time::{Duration, Instant};

use baton_protocol::ids::ClientMsgId;
use baton_protocol::ws::{
    AgentFrame, AgentServerFrame, ErrorCode, VisitorFrame, VisitorServerFrame,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Ws, start};

/// Waits until the server closes `conn` (a read returns 0 or fails); returns how long it took.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), conn.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

const QUICK: &str =
    "[server]\nheader_timeout = \"1s\"\nidle_timeout = \"2s\"\nmax_connections = 16\n";

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let s = start(QUICK).await;
    let addr = s.running.addr;
    // Connections that send nothing, and one that sends half a request.
    let mut silent = vec![];
    for _ in 0..10 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    for c in silent.iter_mut().chain([&mut half]) {
        closed_within(c, Duration::from_secs(5)).await;
    }
    // A keep-alive connection that goes quiet after one request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let took = closed_within(&mut idle, Duration::from_secs(8)).await;
    assert!(
        took >= Duration::from_millis(500),
        "closed only once idle: {took:?}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_are_closed_at_once() {
    let s = start(QUICK).await;
    let addr = s.running.addr;
    let mut held = vec![];
    for _ in 0..16 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let took = closed_within(&mut extra, Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_millis(900),
        "refused at once, not after the header timeout: {took:?}"
    );
    // The silent ones are closed by the header timeout, and then requests are served again.
    for c in &mut held {
        closed_within(c, Duration::from_secs(5)).await;
    }
    let r = s.http.get(s.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_limit_is_raised_at_start() {
    let _s = start("").await;
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert_eq!(soft, hard, "the soft limit was raised to the hard one");
}

#[tokio::test]
async fn a_socket_that_stops_answering_pings_is_closed() {
    let s = start(QUICK).await;
    let v = s.visitor().await;
    let (mut raw, _) = tokio_tungstenite::connect_async(
        s.ws_url(&format!("/api/v1/visitor/ws?token={}", v.token)),
    )
    .await
    .unwrap();
    raw.send(Message::text(r#"{"type":"hello","last_seq":0}"#))
        .await
        .unwrap();
    // Not reading means not answering pings: tungstenite answers only while it is polled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut close = None;
    while let Some(m) = tokio::time::timeout(Duration::from_secs(5), raw.next())
        .await
        .expect("the server closes")
    {
        if let Ok(Message::Close(c)) = m {
            close = c.map(|c| u16::from(c.code));
            break;
        }
    }
    assert_eq!(close, Some(1008));
}

#[tokio::test]
async fn the_largest_allowed_text_always_fits_a_frame_and_bigger_frames_close_1009() {
    let s = start("").await;
    let visitor = s.visitor().await;
    let session = s.handover(&visitor).await.session.unwrap();
    let mut v = s.visitor_ws(&visitor, session.head_seq).await;
    v.recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Queue { .. }))
        .await;
    // 4,096 bytes of control characters escape to a 24 KiB frame: read, and refused in words.
    v.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from("ctl"),
        text: "\u{1}".repeat(baton_protocol::MAX_TEXT_BYTES),
    })
    .await;
    let VisitorServerFrame::Error {
        code,
        client_msg_id,
        message,
    } = v
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::BadFrame);
    assert_eq!(client_msg_id.as_ref().map(|c| c.as_str()), Some("ctl"));
    assert!(message.contains("control character"), "{message}");
    // The largest text of quotes (escaped to two bytes each) is accepted.
    v.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from("quotes"),
        text: "\"".repeat(baton_protocol::MAX_TEXT_BYTES),
    })
    .await;
    v.recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Ack { client_msg_id, .. } if client_msg_id.as_str() == "quotes"))
        .await;
    // A frame over the limit ends the connection with 1009 (message too big).
    v.send_raw(&"x".repeat(baton_protocol::MAX_FRAME_BYTES + 1))
        .await;
    assert_eq!(v.closed_with().await, Some(1009));
}

#[tokio::test]
async fn every_error_is_the_documented_json() {
    let s = start("").await;
    let check = |status: u16, body: &Value, expected_status: u16, code: &str| {
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    // A body over the limit: 413, not 400.
    let huge = json!({"sender": "x", "message": "y".repeat(70 * 1024)});
    let (status, body) = s.post("/webhooks/rest/webhook", &huge).await;
    check(status, &body, 413, "too_large");
    // No token on a socket endpoint; not a WebSocket at all; no such route; wrong method.
    for (path, expected, code) in [
        ("/api/v1/visitor/ws", 401, "unauthorized"),
        ("/api/v1/agent/ws", 401, "unauthorized"),
        ("/api/v1/visitor/ws?token=abc", 400, "bad_request"),
        ("/api/v1/nothing-here", 404, "not_found"),
        ("/api/v1/handover", 405, "bad_request"),
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        check(status, &body, expected, code);
    }
    let r = s
        .http
        .post(s.url("/api/v1/visitor"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "no body is needed to become a visitor"
    );
    let r = s
        .http
        .post(s.url("/webhooks/rest/webhook"))
        .body(r#"{"sender":"a","message":"b"}"#)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    check(status, &body, 415, "bad_request");
}

#[tokio::test]
async fn idempotency_keys_are_bounded_and_scoped_to_their_author() {
    let s = start("").await;
    let visitor = s.visitor().await;
    let session = s.handover(&visitor).await.session.unwrap();
    let login = s.login().await;
    let mut a = s.agent_ws(&login.token).await;
    a.send(&AgentFrame::Accept {
        conversation_id: session.conversation_id.clone(),
    })
    .await;
    a.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
        .await;
    let mut v = s.visitor_ws(&visitor, session.head_seq).await;
    for (id, what) in [(String::new(), "empty"), ("k".repeat(12 * 1024), "12 KB")] {
        v.send(&VisitorFrame::Message {
            client_msg_id: ClientMsgId(id),
            text: "hi".into(),
        })
        .await;
        let VisitorServerFrame::Error { code, .. } = v
            .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Error { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(code, ErrorCode::BadFrame, "{what} id");
    }
    v.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from("shared"),
        text: "from the visitor".into(),
    })
    .await;
    let VisitorServerFrame::Ack {
        seq: visitor_seq, ..
    } = v
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    // The agent uses the same key: its own message, its own seq.
    a.send(&AgentFrame::Message {
        conversation_id: session.conversation_id.clone(),
        client_msg_id: ClientMsgId::from("shared"),
        text: "from the agent".into(),
    })
    .await;
    let AgentServerFrame::Ack { seq: agent_seq, .. } = a
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    assert_ne!(agent_seq, visitor_seq);
    // The same key with another text is an error, not a silent drop.
    v.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from("shared"),
        text: "something else".into(),
    })
    .await;
    let VisitorServerFrame::Error { code, .. } = v
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::Conflict);
}

/// The next data frame within 300 ms, if any (pings skipped).
async fn next_frame(ws: &mut Ws) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(deadline, ws.0.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return Some(m),
            _ => return None,
        }
    }
}

/// No data frame arrives within 300 ms.
async fn quiet(ws: &mut Ws) -> bool {
    next_frame(ws).await.is_none()
}

/// Queue positions go only to the sockets whose position changed.
#[tokio::test]
async fn queue_positions_are_pushed_only_where_they_changed() {
    let s = start("").await;
    let mut sockets = vec![];
    for i in 0..30 {
        let v = s.visitor().await;
        let session = s.handover(&v).await.session.unwrap();
        let mut ws = s.visitor_ws(&v, session.head_seq).await;
        let VisitorServerFrame::Queue { position, .. } = ws
            .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Queue { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(position, Some(i + 1));
        sockets.push(ws);
    }
    // Joining at the back changed nobody's place, so nobody heard of it. The last one leaves:
    // nobody else hears anything either.
    for ws in sockets.iter_mut() {
        assert!(
            quiet(ws).await,
            "no frame for a socket whose place did not change"
        );
    }
    let mut last = sockets.pop().unwrap();
    last.send(&VisitorFrame::Cancel).await;
    for ws in sockets.iter_mut() {
        assert!(
            quiet(ws).await,
            "no frame for a socket whose place did not change"
        );
    }
    // The first one leaves: everyone else moves up by one, and hears it once.
    let mut first = sockets.remove(0);
    first.send(&VisitorFrame::Cancel).await;
    for (i, ws) in sockets.iter_mut().enumerate() {
        let VisitorServerFrame::Queue { position, .. } = ws
            .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Queue { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(position, Some(i as u32 + 1));
        if let Some(extra) = next_frame(ws).await {
            panic!("told once, but then: {extra:?}");
        }
    }
}
