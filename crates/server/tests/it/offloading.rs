//! Offloading that changes live: a supervisor's switch (HTTP API, every replica), opening
//! hours that close with chats still queued, and what queued visitors are told.

use std::sync::Arc;

use baton_protocol::state::ConversationState;
use baton_protocol::status::OffloadState;
use baton_protocol::ws::*;
use baton_server::Deps;
use baton_server::clock::ManualClock;
use serde_json::json;

use crate::harness::{Backend, TestServer, Ws, start, start_with};

const STAFF: &str = r#"
[[agents]]
email = "boss@x"
name = "Bea"
password = "pw-boss"
role = "supervisor"

[[agents]]
email = "dana@x"
name = "Dana"
password = "pw-dana"
"#;

async fn switch(
    s: &TestServer,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut r = reqwest::Client::new()
        .post(s.url("/api/v1/offloading"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// Reads the visitor's socket until it has been told the status `state` and a handover
/// outcome (in either order); returns the outcome.
async fn told_and_answered(ws: &mut Ws, state: OffloadState) -> ConversationState {
    let (mut status, mut outcome) = (false, None);
    while !status || outcome.is_none() {
        match ws.recv::<VisitorServerFrame>().await {
            VisitorServerFrame::Status { status: s } if s.state == state => status = true,
            VisitorServerFrame::Event { event } => {
                if let EventBody::HandoverOutcome { outcome: o } = event.body {
                    outcome = Some(o);
                }
            }
            _ => {}
        }
    }
    outcome.unwrap()
}

async fn told(ws: &mut Ws, state: OffloadState) {
    ws.recv_until(|f: &VisitorServerFrame| {
        matches!(f, VisitorServerFrame::Status { status } if status.state == state)
    })
    .await;
}

#[tokio::test]
async fn a_supervisor_switches_offloading_off_and_queued_visitors_return_to_the_bot() {
    let s = start(STAFF).await;
    let boss = s.login_as("boss@x", "pw-boss").await;
    let dana = s.login_as("dana@x", "pw-dana").await;

    // Who may ask and who may switch.
    let (code, _) = switch(&s, None, json!({"enabled": false})).await;
    assert_eq!(code, 401);
    let (code, body) = switch(&s, Some(&dana.token), json!({"enabled": false})).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("supervisor"));
    let (code, _) = switch(&s, Some(&boss.token), json!({"enabled": "no"})).await;
    assert_eq!(code, 400);
    let got = reqwest::Client::new()
        .get(s.url("/api/v1/offloading"))
        .bearer_auth(&dana.token)
        .send()
        .await
        .unwrap();
    let got: OffloadingResponse = got.json().await.unwrap();
    assert!(got.enabled && got.changed_by.is_none());

    // A visitor waits; Dana's console and the visitor's socket are open.
    let mut console = s.agent_ws(&dana.token).await;
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    let h = s.handover(&v).await;
    let mut ws = s.visitor_ws(&v, h.session.unwrap().head_seq).await;
    told(&mut ws, OffloadState::Open).await;

    // Bea switches it off: the visitor is told at once and is back with the bot.
    let (code, body) = switch(&s, Some(&boss.token), json!({"enabled": false})).await;
    assert_eq!(code, 200, "{body}");
    let answer: OffloadingResponse = serde_json::from_value(body).unwrap();
    assert!(!answer.enabled);
    assert_eq!(answer.changed_by.as_deref(), Some("Bea"));
    assert_eq!(answer.status.state, OffloadState::Disabled);
    assert_eq!(
        told_and_answered(&mut ws, OffloadState::Disabled).await,
        ConversationState::Disabled
    );
    // The console hears both: the status, and the chat leaving the queue.
    let (mut status, mut dequeued) = (false, false);
    while !(status && dequeued) {
        match console.recv::<AgentServerFrame>().await {
            AgentServerFrame::Status { status: s } => status |= s.state == OffloadState::Disabled,
            AgentServerFrame::Dequeued { .. } => dequeued = true,
            _ => {}
        }
    }
    let reply = s.bot(&v, "hello").await;
    assert!(reply[0].text.as_deref().unwrap().contains("demo assistant"));
    // New requests are answered `disabled`.
    let w = s.visitor().await;
    assert_eq!(s.handover(&w).await.state, ConversationState::Disabled);

    // On again: open for everyone, and the switch says who.
    let (code, _) = switch(&s, Some(&boss.token), json!({"enabled": true})).await;
    assert_eq!(code, 200);
    assert_eq!(s.get_json("/api/v1/status").await["state"], "open");
    assert!(matches!(
        s.handover(&w).await.state,
        ConversationState::Queued { .. }
    ));
}

#[tokio::test]
async fn the_switch_is_stored_and_survives_a_restart() {
    let s = start(STAFF).await;
    let boss = s.login_as("boss@x", "pw-boss").await;
    assert_eq!(
        switch(&s, Some(&boss.token), json!({"enabled": false}))
            .await
            .0,
        200
    );
    let dir = s.stop().await;
    let s = crate::harness::start_in(dir, STAFF).await;
    let status = s.get_json("/api/v1/status").await;
    assert_eq!(status["state"], "disabled", "{status}");
}

#[tokio::test]
async fn closing_time_returns_queued_chats_to_the_bot_when_configured() {
    // Thursday 2026-11-19, 16:59 in Berlin (15:59 UTC); the hours end at 17:00.
    let thu_1659 = 1_795_103_940_000;
    let clock = Arc::new(ManualClock::at(thu_1659));
    let s = start_with(
        Backend::Sqlite,
        "[offloading]\nhours = [\"mon-fri 09:00-17:00\"]\ntime_zone = \"Europe/Berlin\"\n\
         closed = [\"2026-11-20\"]\nat_closing = \"return_to_bot\"\n",
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    let h = s.handover(&v).await;
    assert!(matches!(h.state, ConversationState::Queued { .. }), "{h:?}");
    let mut ws = s.visitor_ws(&v, h.session.unwrap().head_seq).await;
    told(&mut ws, OffloadState::Open).await;

    // 17:00: closed; Friday is a holiday, so the next opening is Monday 09:00 Berlin time.
    clock.advance(60_000);
    let next = Some("2026-11-23T09:00:00+01:00".to_owned());
    assert_eq!(
        told_and_answered(&mut ws, OffloadState::Closed).await,
        ConversationState::Closed {
            next_open_at: next.clone()
        }
    );
    assert_eq!(s.service().status().await.unwrap().next_open_at, next);
}

#[tokio::test]
async fn closing_time_keeps_queued_chats_by_default() {
    let thu_1659 = 1_795_103_940_000;
    let clock = Arc::new(ManualClock::at(thu_1659));
    let s = start_with(
        Backend::Sqlite,
        "[offloading]\nhours = [\"mon-fri 09:00-17:00\"]\ntime_zone = \"Europe/Berlin\"\n",
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let v = s.visitor().await;
    let h = s.handover(&v).await;
    let mut ws = s.visitor_ws(&v, h.session.unwrap().head_seq).await;
    told(&mut ws, OffloadState::Open).await;
    clock.advance(60_000);
    told(&mut ws, OffloadState::Closed).await;
    // Still queued a status round later.
    s.service().recheck_status().await;
    let conv = s.service().visitor_by_token(&v.token).await.unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
}

#[tokio::test]
async fn the_switch_reaches_every_replica_on_postgres_and_nats() {
    // Two services on one database and one NATS server: the switch flipped on one is the
    // status of the other.
    let a = start_with(Backend::PostgresNats, STAFF, Deps::default()).await;
    let b = crate::harness::replica_of(&a, STAFF).await;
    let boss = a.login_as("boss@x", "pw-boss").await;
    let v = b.visitor().await;
    let h = b.handover(&v).await;
    let mut ws = b.visitor_ws(&v, h.session.unwrap().head_seq).await;
    told(&mut ws, OffloadState::Open).await;
    assert_eq!(
        switch(&a, Some(&boss.token), json!({"enabled": false}))
            .await
            .0,
        200
    );
    assert_eq!(
        told_and_answered(&mut ws, OffloadState::Disabled).await,
        ConversationState::Disabled
    );
    assert_eq!(b.get_json("/api/v1/status").await["state"], "disabled");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn queued_visitors_hear_an_estimated_wait_from_recent_acceptances() {
    let clock = Arc::new(ManualClock::at(1_795_186_800_000));
    let s = start_with(
        Backend::Sqlite,
        "",
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let dana = s.login().await;
    let mut console = s.agent_ws(&dana.token).await;
    // Two chats taken, at 1 and at 3 minutes: the line moves one place every 2 minutes.
    for wait in [60_000, 120_000] {
        let v = s.visitor().await;
        let id = s.handover(&v).await.session.unwrap().conversation_id;
        clock.advance(wait);
        console
            .send(&AgentFrame::Accept {
                conversation_id: id.clone(),
            })
            .await;
        console
            .recv_until(|f: &AgentServerFrame| matches!(f, AgentServerFrame::Transcript { conversation, .. } if conversation.conversation_id == id))
            .await;
    }
    // Two visitors wait now: the second one's estimate is twice the first's.
    let mut waits = vec![];
    for _ in 0..2 {
        let v = s.visitor().await;
        let h = s.handover(&v).await;
        let mut ws = s.visitor_ws(&v, h.session.unwrap().head_seq).await;
        let VisitorServerFrame::Queue { position, wait_s } = ws
            .recv_until(|f: &VisitorServerFrame| {
                matches!(
                    f,
                    VisitorServerFrame::Queue {
                        wait_s: Some(_),
                        ..
                    }
                )
            })
            .await
        else {
            unreachable!()
        };
        waits.push((position, wait_s));
    }
    assert_eq!(waits, [(Some(1), Some(120)), (Some(2), Some(240))]);
}

#[tokio::test]
async fn a_visitor_leaves_a_message_and_agents_list_it_and_mark_it_done() {
    let s = start(STAFF).await;
    let v = s.visitor().await;
    let leave = |body: serde_json::Value, token: Option<String>| {
        let s = &s;
        async move {
            s.post_as("/api/v1/visitor/message", token.as_deref(), &body)
                .await
        }
    };
    let ok = json!({"visitor_id": v.id, "name": " Ada ", "email": "Ada@Example.ORG",
        "text": "Please call me back about my order.", "page_url": "https://shop.example.com/cart"});
    // Only with the visitor's credential, and checked.
    assert_eq!(leave(ok.clone(), None).await.0, 401);
    let other = s.visitor().await;
    assert_eq!(leave(ok.clone(), Some(other.token.clone())).await.0, 403);
    for (field, value, needle) in [
        ("email", "ada at home", "e-mail"),
        ("name", "", "name"),
        ("text", "   ", "empty"),
    ] {
        let mut bad = ok.clone();
        bad[field] = json!(value);
        let (code, body) = leave(bad, Some(v.token.clone())).await;
        assert_eq!(code, 400, "{field}: {body}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
    }
    let (code, body) = leave(ok, Some(v.token.clone())).await;
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_i64().unwrap();

    // Agents list it (visitors cannot) and mark it done.
    let dana = s.login_as("dana@x", "pw-dana").await;
    let list = |token: Option<String>, done: bool| {
        let s = &s;
        async move {
            let mut r = reqwest::Client::new().get(s.url(&format!("/api/v1/messages?done={done}")));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(list(Some(v.token.clone()), false).await.0, 401);
    let (code, open) = list(Some(dana.token.clone()), false).await;
    assert_eq!(code, 200);
    let open: Vec<LeftMessage> = serde_json::from_value(open).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].id, open[0].name.as_str(), open[0].email.as_str()),
        (id, "Ada", "Ada@example.org")
    );
    assert_eq!(
        open[0].page_url.as_deref(),
        Some("https://shop.example.com/cart")
    );
    let (code, _) = s
        .post_as(
            "/api/v1/messages/done",
            Some(&dana.token),
            &json!({"id": id}),
        )
        .await;
    assert_eq!(code, 204);
    let (code, _) = s
        .post_as(
            "/api/v1/messages/done",
            Some(&dana.token),
            &json!({"id": 999}),
        )
        .await;
    assert_eq!(code, 404);
    let (_, open) = list(Some(dana.token.clone()), false).await;
    assert_eq!(open, json!([]));
    let (_, all) = list(Some(dana.token.clone()), true).await;
    assert_eq!(all[0]["done_by"], "Dana");
}

/// Reads Server-Sent Events off a streaming response: the `data:` of each event, and how
/// many keep-alive comments came before it.
struct Events {
    resp: reqwest::Response,
    buf: String,
    comments: usize,
}

impl Events {
    async fn open(url: &str) -> Self {
        let resp = reqwest::Client::new()
            .get(url)
            .header("Origin", "https://shop.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            resp,
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next event's status; `None` when the stream ended.
    async fn next(&mut self) -> Option<baton_protocol::status::OffloadStatus> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    self.comments += 1;
                    continue;
                }
                return Some(serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), self.resp.chunk())
                .await
                .expect("the stream says something within 20 s")
                .unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// A widget still with the bot follows the status over Server-Sent Events: the status now,
/// then each change (a supervisor's switch, an agent coming online) in its language, kept
/// open by comments past the idle timeout, answered with CORS for the site's origin.
#[tokio::test]
async fn a_widget_with_the_bot_hears_status_changes_as_server_sent_events() {
    let s = start(&format!(
        "{STAFF}\n[server]\nidle_timeout = \"2s\"\nallowed_origins = [\"https://shop.example.com\"]\n"
    ))
    .await;
    let mut events = Events::open(&s.url("/api/v1/status/events?locale=de")).await;
    assert_eq!(
        events.resp.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let now = events.next().await.unwrap();
    assert_eq!(
        (now.state, now.agents_online),
        (OffloadState::Open, Some(false))
    );
    assert!(
        now.message
            .unwrap()
            .starts_with("Zurzeit ist kein Mitarbeiter"),
        "in German"
    );

    // Nothing changes for longer than the idle timeout: comments keep it open.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // An agent comes online.
    let dana = s.login_as("dana@x", "pw-dana").await;
    let _console = s.agent_ws(&dana.token).await;
    let online = events.next().await.unwrap();
    assert_eq!(online.agents_online, Some(true));
    assert!(events.comments >= 1, "kept alive by comments");

    // A supervisor switches live chat off, then on again.
    let boss = s.login_as("boss@x", "pw-boss").await;
    let (code, body) = switch(&s, Some(&boss.token), json!({"enabled": false})).await;
    assert_eq!(code, 200, "{body}");
    let off = events.next().await.unwrap();
    assert_eq!(off.state, OffloadState::Disabled);
    let german = s.service().config.texts_for(Some("de")).1.disabled.clone();
    assert_eq!(off.message.as_deref(), Some(german.as_str()));
    let (code, body) = switch(&s, Some(&boss.token), json!({"enabled": true})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(events.next().await.unwrap().state, OffloadState::Open);

    // Another origin is refused before any stream starts.
    let other = reqwest::Client::new()
        .get(s.url("/api/v1/status/events"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);

    // Shutting down ends the stream.
    let service = s.service().clone();
    service.shut_down();
    assert!(events.next().await.is_none(), "the stream ended");
}

/// On PostgreSQL and NATS, with the visitor on one replica and the staff on the other: a
/// queued visitor's line follows its own queue's agents, and a widget still with the bot
/// hears presence and the switch as Server-Sent Events.
#[tokio::test]
async fn a_queue_s_line_and_the_live_status_cross_replicas_on_postgres_and_nats() {
    let cfg = format!(
        "{}{STAFF}\n[server]\nallowed_origins = [\"https://shop.example.com\"]\n",
        crate::languages::SALES
    );
    let a = start_with(Backend::PostgresNats, &cfg, Deps::default()).await;
    let b = crate::harness::replica_of(&a, &cfg).await;
    // Visitor one, on replica b, asks the bot for sales (in German) and waits.
    let v = b.visitor().await;
    let (code, body) = b
        .post_as(
            "/webhooks/rest/webhook?locale=de",
            Some(&v.token),
            &json!({"sender": v.id, "message": "vertrieb bitte"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let conv = b.service().visitor_by_token(&v.token).await.unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
    let head = conv.view.head_seq;
    let mut ws =
        Ws::connect(&b.ws_url(&format!("/api/v1/visitor/ws?token={}&locale=de", v.token))).await;
    ws.send(&VisitorFrame::Hello { last_seq: head }).await;
    let first = next_status(&mut ws).await;
    assert_eq!(
        (first.agents_online, first.message.as_deref()),
        (Some(false), Some("Der Vertrieb ist gerade nicht da."))
    );
    // Visitor two, on replica b, is still with the bot and follows the site's status.
    let mut events = Events::open(&b.url("/api/v1/status/events")).await;
    assert_eq!(events.next().await.unwrap().agents_online, Some(false));

    // Support's agent comes online on replica a: the site has someone, sales has not.
    let dirk = a.login_as("dirk@x", "pw-support").await;
    let _dirk = a.agent_ws(&dirk.token).await;
    assert_eq!(events.next().await.unwrap().agents_online, Some(true));
    // Sales' agent comes online on replica a: now the queued visitor hears of it.
    let sam = a.login_as("sam@x", "pw-sales").await;
    let _sam = a.agent_ws(&sam.token).await;
    loop {
        let now = next_status(&mut ws).await;
        if now.agents_online == Some(true) {
            assert_eq!(
                now.message.as_deref(),
                Some("Der Vertrieb ist gleich für Sie da.")
            );
            break;
        }
        assert_eq!(
            now.message.as_deref(),
            Some("Der Vertrieb ist gerade nicht da."),
            "with only support's agent online"
        );
    }

    // The supervisor, on replica a, switches live chat off: the bot-phase widget on b is told.
    let boss = a.login_as("boss@x", "pw-boss").await;
    let (code, body) = switch(&a, Some(&boss.token), json!({"enabled": false})).await;
    assert_eq!(code, 200, "{body}");
    let off = loop {
        let s = events.next().await.unwrap();
        if s.state != OffloadState::Open {
            break s;
        }
    };
    assert_eq!(off.state, OffloadState::Disabled);
    drop(events);
    drop(ws);
    b.stop().await;
    a.stop().await;
}

/// The next status frame on a visitor's socket.
async fn next_status(ws: &mut Ws) -> baton_protocol::status::OffloadStatus {
    loop {
        if let VisitorServerFrame::Status { status } = ws.recv::<VisitorServerFrame>().await {
            return status;
        }
    }
}

/// Opening time by itself (a fixed clock, Monday 08:59 in Berlin): a widget with the bot is
/// told "closed" with the next opening, and at 09:00 "open", pushed without asking.
#[tokio::test]
async fn opening_time_is_pushed_to_widgets_with_the_bot() {
    let mon_0859 = 1_795_420_740_000;
    let clock = Arc::new(ManualClock::at(mon_0859));
    let s = start_with(
        Backend::Sqlite,
        "[server]\nallowed_origins = [\"https://shop.example.com\"]\n\
         [offloading]\nhours = [\"mon-fri 09:00-17:00\"]\ntime_zone = \"Europe/Berlin\"\n",
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let mut events = Events::open(&s.url("/api/v1/status/events")).await;
    let closed = events.next().await.unwrap();
    assert_eq!(closed.state, OffloadState::Closed);
    assert_eq!(
        closed.next_open_at.as_deref(),
        Some("2026-11-23T09:00:00+01:00")
    );
    clock.advance(60_000);
    let open = events.next().await.unwrap();
    assert_eq!(open.state, OffloadState::Open);
    assert_eq!(open.next_open_at, None);
}
