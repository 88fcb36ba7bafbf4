//! Several replicas: two real `baton-server` processes on one PostgreSQL database and one
//! NATS server, real WebSocket clients. A visitor on replica A and agents on both chat with
//! the same guarantees as on one server; a replica killed mid-chat loses nothing.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use baton_protocol::ids::ClientMsgId;
use baton_protocol::ws::{
    AgentFrame, AgentServerFrame, ErrorCode, EventBody, LoginResponse, VisitorCredentials,
    VisitorFrame, VisitorServerFrame,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{TestDb, Ws, nats_url, require_nats};

/// One `baton-server` process.
struct Replica {
    child: Child,
    addr: SocketAddr,
}

impl Replica {
    async fn start(config: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton-server"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.trim().strip_prefix("demo page:") {
                    let url = rest.trim().trim_start_matches("http://");
                    return url.trim_end_matches("/demo/").parse().unwrap();
                }
            }
            panic!("baton-server exited before it was ready");
        })
        .await
        .expect("the replica starts");
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn ws(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

async fn post(http: &reqwest::Client, url: String, bearer: Option<&str>, body: Value) -> Value {
    let mut r = http.post(url).json(&body);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

async fn agent_on(r: &Replica, token: &str) -> Ws {
    let mut ws = Ws::connect(&r.ws(&format!("/api/v1/agent/ws?token={token}"))).await;
    let AgentServerFrame::Welcome { .. } = ws.recv().await else {
        panic!("welcome first")
    };
    ws
}

fn is_event_seq(f: &VisitorServerFrame, seq: u64) -> bool {
    matches!(f, VisitorServerFrame::Event { event } if event.seq == seq)
}

#[tokio::test]
async fn two_replicas_serve_one_conversation_and_survive_a_kill() {
    require_nats().await;
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("baton.toml");
    let prefix = format!("rep{}", baton_server::auth::random_hex(4));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndatabase = \"{}\"\nbus = \"{}\"\nbus_prefix = \"{}\"\n\
             widget_dir = \"{d}\"\nconsole_dir = \"{d}\"\n\
             [[agents]]\nemail = \"dana@x\"\nname = \"Dana\"\npassword = \"pw-dana\"\n\
             [[agents]]\nemail = \"sam@x\"\nname = \"Sam\"\npassword = \"pw-sam\"\n",
            db.url,
            nats_url(),
            prefix,
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let mut a = Replica::start(&config).await;
    let b = Replica::start(&config).await;
    let http = reqwest::Client::new();

    // The visitor starts on A; Dana works on B and Sam on A.
    let c: VisitorCredentials =
        serde_json::from_value(post(&http, a.url("/api/v1/visitor"), None, json!({})).await)
            .unwrap();
    post(
        &http,
        a.url("/webhooks/rest/webhook"),
        Some(&c.token),
        json!({"sender": c.visitor_id, "message": "hello"}),
    )
    .await;
    let login = |r: &Replica, email: &str, pw: &str| {
        let (http, url) = (http.clone(), r.url("/api/v1/agent/login"));
        let body = json!({"email": email, "password": pw});
        async move {
            serde_json::from_value::<LoginResponse>(post(&http, url, None, body).await).unwrap()
        }
    };
    let dana = login(&b, "dana@x", "pw-dana").await;
    let sam = login(&a, "sam@x", "pw-sam").await;
    let mut dana_ws = agent_on(&b, &dana.token).await;
    let mut sam_ws = agent_on(&a, &sam.token).await;

    // Presence is shared: A counts Dana, who is connected to B only.
    let status: Value = http
        .get(a.url("/api/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["agents_online"], true);

    // The handover goes through B; both consoles hear of it.
    let h = post(
        &http,
        b.url("/api/v1/handover"),
        Some(&c.token),
        json!({"visitor_id": c.visitor_id}),
    )
    .await;
    assert_eq!(h["state"]["state"], "queued");
    let id: baton_protocol::ids::ConversationId =
        serde_json::from_value(h["session"]["conversation_id"].clone()).unwrap();
    let head: u64 = h["session"]["head_seq"].as_u64().unwrap();
    for ws in [&mut dana_ws, &mut sam_ws] {
        ws.recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Waiting { conversation } if conversation.conversation_id == id))
            .await;
    }
    let mut visitor = Ws::connect(&a.ws(&format!("/api/v1/visitor/ws?token={}", c.token))).await;
    visitor.send(&VisitorFrame::Hello { last_seq: head }).await;

    // Both accept at once: exactly one wins, the other is told who did.
    let accept = AgentFrame::Accept {
        conversation_id: id.clone(),
    };
    tokio::join!(dana_ws.send(&accept), sam_ws.send(&accept));
    let outcome = |f: &AgentServerFrame| {
        matches!(
            f,
            AgentServerFrame::Transcript { .. } | AgentServerFrame::Error { .. }
        )
    };
    let (d, s) = tokio::join!(dana_ws.recv_until(outcome), sam_ws.recv_until(outcome));
    let dana_won = matches!(d, AgentServerFrame::Transcript { .. });
    let sam_won = matches!(s, AgentServerFrame::Transcript { .. });
    assert!(dana_won ^ sam_won, "exactly one wins: {d:?} / {s:?}");
    let loser = if dana_won { &s } else { &d };
    assert!(
        matches!(
            loser,
            AgentServerFrame::Error {
                code: ErrorCode::Conflict,
                ..
            }
        ),
        "{loser:?}"
    );
    let (mut winner, winner_token, winner_on_a) = if dana_won {
        (dana_ws, dana.token.clone(), false)
    } else {
        (sam_ws, sam.token.clone(), true)
    };

    // Agent → visitor across replicas, and back.
    winner
        .send(&AgentFrame::Message {
            conversation_id: id.clone(),
            client_msg_id: ClientMsgId::from("w1"),
            text: "Hello from the other replica".into(),
        })
        .await;
    let AgentServerFrame::Ack { seq: w1, .. } = winner
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    visitor.recv_until(|f| is_event_seq(f, w1)).await;
    visitor
        .send(&VisitorFrame::Message {
            client_msg_id: ClientMsgId::from("v1"),
            text: "Order 1234".into(),
        })
        .await;
    let VisitorServerFrame::Ack { seq: v1, .. } = visitor
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    winner
        .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Event { event, .. } if event.seq == v1))
        .await;
    // A retry of the same message through the other replica is the same message.
    let mut on_b = Ws::connect(&b.ws(&format!("/api/v1/visitor/ws?token={}", c.token))).await;
    on_b.send(&VisitorFrame::Hello { last_seq: v1 }).await;
    on_b.send(&VisitorFrame::Message {
        client_msg_id: ClientMsgId::from("v1"),
        text: "Order 1234".into(),
    })
    .await;
    let VisitorServerFrame::Ack { seq: again, .. } = on_b
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Ack { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(again, v1, "stored once, whichever replica is asked");
    drop(on_b);

    // Replica A dies mid-chat. Its sockets reconnect to B and lose nothing.
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    drop(visitor);
    if winner_on_a {
        winner = agent_on(&b, &winner_token).await;
        winner
            .send(&AgentFrame::Open {
                conversation_id: id.clone(),
            })
            .await;
        winner
            .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { .. }))
            .await;
    }
    let mut sent = vec![];
    for i in 0..3 {
        winner
            .send(&AgentFrame::Message {
                conversation_id: id.clone(),
                client_msg_id: ClientMsgId(format!("gone{i}")),
                text: format!("While you were away {i}"),
            })
            .await;
        let AgentServerFrame::Ack { seq, .. } = winner
            .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Ack { .. }))
            .await
        else {
            unreachable!()
        };
        sent.push(seq);
    }
    let mut visitor = Ws::connect(&b.ws(&format!("/api/v1/visitor/ws?token={}", c.token))).await;
    visitor.send(&VisitorFrame::Hello { last_seq: v1 }).await;
    let mut got = vec![];
    while got.len() < 3 {
        if let VisitorServerFrame::Event { event } = visitor
            .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Event { .. }))
            .await
        {
            if let EventBody::Message { text, .. } = &event.body {
                assert!(text.starts_with("While you were away"), "{text}");
            }
            got.push(event.seq);
        }
    }
    assert_eq!(got, sent, "every message, once, in order, with no gap");
    assert_eq!(got, vec![v1 + 1, v1 + 2, v1 + 3]);
    visitor.send(&VisitorFrame::Ping).await;
    assert_eq!(
        visitor.recv::<VisitorServerFrame>().await,
        VisitorServerFrame::Pong,
        "nothing replayed twice"
    );

    drop(b);
    db.drop_db().await;
}
