//! Who may do what: visitor credentials, origins, agent sessions, rate limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_protocol::ws::VisitorServerFrame;
use baton_server::Deps;
use baton_server::clock::ManualClock;
use serde_json::{Value, json};

use crate::harness::{Backend, start, start_in, start_with};

/// How a socket endpoint answers: an HTTP status when it refuses the upgrade, the close
/// code when it accepts only to close at once (4401), or 101 when the socket stays open.
async fn ws_status(url: &str, origin: Option<&str>) -> u16 {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, _)) => {
            match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(c))))) => u16::from(c.code),
                _ => 101,
            }
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_visitor_id_alone_opens_nothing() {
    let s = start("").await;
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    let other = s.visitor().await;

    // Handover: no credential, another visitor's credential, an unknown one.
    let body = json!({"visitor_id": v.id});
    let (status, err) = s.post("/api/v1/handover", &body).await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    let (status, err) = s
        .post_as("/api/v1/handover", Some(&other.token), &body)
        .await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")));
    let (status, _) = s
        .post_as("/api/v1/handover", Some("made-up-token"), &body)
        .await;
    assert_eq!(
        status, 401,
        "handover requests for unknown visitors are refused"
    );
    let (status, _) = s
        .post_as(
            "/api/v1/handover",
            Some(&v.token),
            &json!({"visitor_id": ""}),
        )
        .await;
    assert_eq!(status, 400, "an empty visitor id is refused");

    // The bot endpoint: a conversation with a credential accepts nothing without it.
    let (status, err) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": v.id, "message": "hi"}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    let (status, _) = s
        .post_as(
            "/webhooks/rest/webhook",
            Some(&other.token),
            &json!({"sender": v.id, "message": "hi"}),
        )
        .await;
    assert_eq!(status, 403);

    // The socket: no token, an unknown token (closed with 4401, which a browser can see);
    // a credential opens only its own conversation.
    assert_eq!(ws_status(&s.ws_url("/api/v1/visitor/ws"), None).await, 4401);
    assert_eq!(
        ws_status(&s.ws_url("/api/v1/visitor/ws?token=nope"), None).await,
        4401
    );
    let mut ws = s.visitor_ws(&other, 0).await;
    let VisitorServerFrame::Welcome {
        conversation_id, ..
    } = ws.recv().await
    else {
        panic!("welcome")
    };
    let mine = s.service().visitor_by_token(&other.token).await.unwrap();
    assert_eq!(conversation_id, mine.id);
    let theirs = s.service().visitor_by_token(&v.token).await.unwrap();
    assert_ne!(conversation_id, theirs.id);

    // A visitor's credential opens no agent endpoint: not the console socket, the left
    // messages, the ratings or the offloading switch.
    assert_eq!(
        ws_status(
            &s.ws_url(&format!("/api/v1/agent/ws?token={}", v.token)),
            None
        )
        .await,
        4401
    );
    for path in ["/api/v1/messages", "/api/v1/ratings", "/api/v1/offloading"] {
        let r = s
            .http
            .get(s.url(path))
            .bearer_auth(&v.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }
    let (status, _) = s
        .post_as(
            "/api/v1/offloading",
            Some(&v.token),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 401);

    // Credentials are stored hashed: the token itself is nowhere in the database.
    let db = std::fs::read(s.dir.path().join("baton.sqlite3")).unwrap();
    let wal = std::fs::read(s.dir.path().join("baton.sqlite3-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes
                .windows(v.token.len())
                .any(|w| w == v.token.as_bytes()),
            "the raw token is not stored"
        );
    }
}

async fn preflight(s: &crate::harness::TestServer, path: &str, origin: &str) -> reqwest::Response {
    s.http
        .request(reqwest::Method::OPTIONS, s.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_widget_gets_every_text_from_the_configuration() {
    let s = start(
        "[server]\nallowed_origins = [\"https://shop.example.com\"]\n[texts]\n\
         send = \"Senden\"\nqueue_position = \"Sie sind Nummer {position}.\"\n",
    )
    .await;
    let get = |origin: &'static str| {
        s.http
            .get(s.url("/api/v1/widget"))
            .header("origin", origin)
            .send()
    };
    let r = get("https://shop.example.com").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let body: Value = r.json().await.unwrap();
    let texts = body["texts"].as_object().unwrap();
    assert_eq!(texts["send"], "Senden");
    assert_eq!(texts["queue_position"], "Sie sind Nummer {position}.");
    // Every text the widget shows is there, the rest from the defaults.
    for t in baton_protocol::texts::Text::ALL {
        let v = texts.get(t.key()).and_then(Value::as_str).unwrap_or("");
        assert!(!v.is_empty(), "no text `{}`", t.key());
    }
    assert_eq!(texts.len(), baton_protocol::texts::Text::ALL.len());
    assert_eq!(texts["request_agent"], "Request live agent");
    // Pages on other origins get nothing.
    assert_eq!(
        get("https://evil.example").await.unwrap().status().as_u16(),
        403
    );
}

#[tokio::test]
async fn any_origin_may_embed_the_widget_by_default() {
    let s = start("").await;
    for path in [
        "/webhooks/rest/webhook",
        "/api/v1/visitor",
        "/api/v1/handover",
    ] {
        let r = preflight(&s, path, "https://any-shop.example").await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://any-shop.example"
        );
        let allowed = r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    }
    // A Rasa REST client on another origin works as with Rasa.
    let r = s
        .http
        .post(s.url("/webhooks/rest/webhook"))
        .header("origin", "https://chatroom.example")
        .json(&json!({"sender": "rasa-user", "message": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://chatroom.example"
    );
    assert_eq!(
        ws_status(
            &s.ws_url("/api/v1/visitor/ws?token=x"),
            Some("https://any-shop.example")
        )
        .await,
        4401,
        "the origin passes; the bad token does not"
    );
}

#[tokio::test]
async fn only_allowed_origins_may_use_the_visitor_endpoints_when_set() {
    let s = start("[server]\nallowed_origins = [\"https://shop.example.com\"]\n").await;
    let v = s.visitor().await;
    let ok = preflight(&s, "/webhooks/rest/webhook", "https://shop.example.com").await;
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let evil = preflight(&s, "/webhooks/rest/webhook", "https://evil.example").await;
    assert!(
        !evil.headers().contains_key("access-control-allow-origin"),
        "no CORS grant for other origins"
    );
    let r = s
        .http
        .post(s.url("/webhooks/rest/webhook"))
        .header("origin", "https://evil.example")
        .bearer_auth(&v.token)
        .json(&json!({"sender": v.id, "message": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");

    let url = s.ws_url(&format!("/api/v1/visitor/ws?token={}", v.token));
    assert_eq!(ws_status(&url, Some("https://evil.example")).await, 403);
    assert_eq!(ws_status(&url, Some("https://shop.example.com")).await, 101);
    assert_eq!(
        ws_status(&url, None).await,
        101,
        "no Origin: not a browser page"
    );
    // Baton's own pages (the demo page, the console) are always allowed.
    let own = format!("http://{}", s.running.addr);
    assert_eq!(ws_status(&url, Some(&own)).await, 101);
    let login = s.login().await;
    let agent = s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token));
    assert_eq!(ws_status(&agent, Some(&own)).await, 101);
    assert_eq!(ws_status(&agent, Some("https://evil.example")).await, 403);
}

#[tokio::test]
async fn agent_sessions_expire_unless_used_and_end_at_logout() {
    let clock = Arc::new(ManualClock::at(1_795_186_800_000));
    let s = start_with(
        Backend::Sqlite,
        "[server]\nagent_session_ttl = \"1h\"\n",
        Deps {
            clock: Some(clock.clone()),
            ..Deps::default()
        },
    )
    .await;
    let login = s.login().await;
    let url = s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token));
    assert_eq!(ws_status(&url, None).await, 101);
    // Each use slides the expiry: 50 minutes later it is still good, and again 50 later.
    clock.advance(50 * 60_000);
    assert_eq!(ws_status(&url, None).await, 101);
    clock.advance(50 * 60_000);
    assert_eq!(ws_status(&url, None).await, 101);
    // Unused for over an hour: gone.
    clock.advance(61 * 60_000);
    assert_eq!(
        ws_status(&url, None).await,
        4401,
        "an expired session is refused"
    );

    // Logging out closes the session's sockets (4401) and refuses the token afterwards.
    let login = s.login().await;
    let mut a = s.agent_ws(&login.token).await;
    let (status, _) = s
        .post_as("/api/v1/agent/logout", Some(&login.token), &json!({}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(a.closed_with().await, Some(4401));
    assert_eq!(
        ws_status(
            &s.ws_url(&format!("/api/v1/agent/ws?token={}", login.token)),
            None
        )
        .await,
        4401
    );
}

#[tokio::test]
async fn a_changed_password_or_a_removed_agent_ends_sessions_and_logins() {
    let two = "[[agents]]\nemail = \"a@x\"\nname = \"A\"\npassword = \"one\"\n\
               [[agents]]\nemail = \"b@x\"\nname = \"B\"\npassword = \"bee\"\n";
    let s = start(two).await;
    let a = s.login_as("a@x", "one").await;
    let b = s.login_as("b@x", "bee").await;
    // B is chatting with a visitor.
    let bs_visitor = s.visitor().await;
    let session = s.handover(&bs_visitor).await.session.unwrap();
    let mut b_ws = s.agent_ws(&b.token).await;
    b_ws.send(&baton_protocol::ws::AgentFrame::Accept {
        conversation_id: session.conversation_id.clone(),
    })
    .await;
    b_ws.recv_until(|f: &baton_protocol::ws::AgentServerFrame| {
        matches!(f, baton_protocol::ws::AgentServerFrame::Transcript { .. })
    })
    .await;
    drop(b_ws);
    let dir = s.stop().await;

    // A's password changes and B is removed from the configuration.
    let s = start_in(
        dir,
        "[[agents]]\nemail = \"a@x\"\nname = \"A\"\npassword = \"two\"\n",
    )
    .await;
    for token in [&a.token, &b.token] {
        let url = s.ws_url(&format!("/api/v1/agent/ws?token={token}"));
        assert_eq!(ws_status(&url, None).await, 4401);
    }
    let (status, _) = s
        .post(
            "/api/v1/agent/login",
            &json!({"email": "a@x", "password": "one"}),
        )
        .await;
    assert_eq!(status, 401, "the old password no longer works");
    s.login_as("a@x", "two").await;
    let (status, _) = s
        .post(
            "/api/v1/agent/login",
            &json!({"email": "b@x", "password": "bee"}),
        )
        .await;
    assert_eq!(status, 401, "a removed agent cannot log in");
}

#[tokio::test]
async fn rate_limits_answer_429_and_others_keep_being_served() {
    let s =
        start("[limits]\nvisitor_per_minute = 3\nnew_visitors_per_hour = 4\nlogin_failures = 2\n")
            .await;
    let v = s.visitor().await;
    let w = s.visitor().await;
    for _ in 0..3 {
        s.bot(&v, "hello").await;
    }
    let r = s
        .http
        .post(s.url("/webhooks/rest/webhook"))
        .bearer_auth(&v.token)
        .json(&json!({"sender": v.id, "message": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Another visitor is still served.
    s.bot(&w, "hello").await;
    // The socket refuses too, with an error frame, and stays open.
    let mut ws = s.visitor_ws(&v, 0).await;
    ws.send(&baton_protocol::ws::VisitorFrame::Message {
        client_msg_id: "x1".into(),
        text: "hi".into(),
    })
    .await;
    let VisitorServerFrame::Error { code, .. } = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Error { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(code, baton_protocol::ws::ErrorCode::RateLimited);

    // New visitors per address.
    s.visitor().await;
    s.visitor().await;
    let (status, body) = s.post("/api/v1/visitor", &json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited"))
    );

    // Failed logins back off; the right password must wait too.
    for _ in 0..2 {
        let (status, _) = s
            .post(
                "/api/v1/agent/login",
                &json!({"email": "agent@baton.example", "password": "wrong"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, body) = s
        .post(
            "/api/v1/agent/login",
            &json!({"email": "agent@baton.example", "password": "baton-demo"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited"))
    );
}

/// The median of three logins.
async fn login_time(s: &crate::harness::TestServer, email: &str) -> Duration {
    let mut times = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        let (status, _) = s
            .post(
                "/api/v1/agent/login",
                &json!({"email": email, "password": "wrong"}),
            )
            .await;
        assert_eq!(status, 401);
        times.push(t.elapsed());
    }
    times.sort();
    times[1]
}

#[tokio::test]
async fn logins_cost_the_same_for_unknown_e_mails_and_never_block_other_requests() {
    let s = start("[limits]\nlogin_failures = 1000\n").await;
    let known = login_time(&s, "agent@baton.example").await;
    let unknown = login_time(&s, "nobody@baton.example").await;
    // An unknown e-mail is checked against a dummy hash: not an instant answer.
    assert!(
        unknown * 3 >= known,
        "unknown {unknown:?} vs known {known:?}: the difference would tell who has an account"
    );

    // 64 logins at once are hashed off the request threads: the status endpoint answers
    // while they are still being checked.
    let logins: Vec<_> = (0..64)
        .map(|_| {
            let (http, url) = (s.http.clone(), s.url("/api/v1/agent/login"));
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"email": "agent@baton.example", "password": "wrong"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = s.http.get(s.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(status.status().as_u16(), 200);
    let unfinished = logins.iter().filter(|l| !l.is_finished()).count();
    assert!(
        unfinished > 0,
        "the status answer came while logins were still being hashed"
    );
    for l in logins {
        assert_eq!(l.await.unwrap().unwrap(), 401);
    }
}

/// A short grace period for a closed console (tests that wait for an agent to go offline).
pub const GRACE_1S: &str = "[offloading]\nconsole_grace = \"1s\"\n";

#[tokio::test]
async fn presence_is_shared_through_the_store() {
    let s = start_with(Backend::PostgresNats, GRACE_1S, Deps::default()).await;
    let status = || async { s.get_json("/api/v1/status").await["agents_online"].as_bool() };
    assert_eq!(status().await, Some(false));
    let login = s.login().await;
    let a = s.agent_ws(&login.token).await;
    assert_eq!(status().await, Some(true));
    drop(a);
    crate::harness::eventually("the agent goes offline", || async {
        (status().await == Some(false)).then_some(())
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn metrics_are_off_unless_a_token_is_set_and_then_need_it() {
    let s = start("").await;
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let s = start("[server]\nmetrics_token = \"m-secret\"\n").await;
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    let r = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let text = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth("m-secret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let commits: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("baton_stage_total{stage=\"store_commit\"} "))
        .and_then(|n| n.parse().ok())
        .expect("a commit counter");
    assert!(
        commits >= 2.0,
        "the message and the bot's answer were committed: {text}"
    );
}

#[tokio::test]
async fn a_visitor_cannot_write_the_note_for_the_agent_or_pick_a_queue() {
    let s = start("").await;
    let v = s.visitor().await;
    let (status, _) = s
        .post_as(
            "/api/v1/handover",
            Some(&v.token),
            &json!({"visitor_id": v.id, "directive": {
                "reason": "user_request",
                "message_to_agent": "Verified owner, approve the refund",
                "routing": {"queue": "aaa"}}}),
        )
        .await;
    assert_eq!(status, 200);
    let conv = s
        .service()
        .store
        .conversation_by_visitor(&v.id)
        .await
        .unwrap()
        .unwrap();
    let h = conv.handover.unwrap();
    assert_eq!(h.message_to_agent, None, "only the bot may write the note");
    assert_eq!(h.queue, "default", "only the bot may route");
}

#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_login_back_off() {
    let s = start("[limits]\nlogin_failures = 2\n").await;
    let guesses: Vec<_> = (0..10)
        .map(|i| {
            let (http, url) = (s.http.clone(), s.url("/api/v1/agent/login"));
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"email": "agent@baton.example", "password": format!("guess{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut checked = 0;
    for g in guesses {
        match g.await.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(checked, 2, "only the allowed attempts were checked");
}

#[tokio::test]
async fn new_plain_senders_count_as_new_visitors() {
    let s = start("[limits]\nnew_visitors_per_hour = 2\n").await;
    s.rasa("rasa-a", "hello").await;
    s.rasa("rasa-b", "hello").await;
    s.rasa("rasa-a", "again").await;
    let (status, body) = s
        .post(
            "/webhooks/rest/webhook",
            &json!({"sender": "rasa-c", "message": "hello"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited"))
    );
}

#[tokio::test]
async fn one_visitor_cannot_hold_many_sockets() {
    let s = start("").await;
    let v = s.visitor().await;
    let mut open = vec![];
    for _ in 0..8 {
        let mut ws = s.visitor_ws(&v, 0).await;
        let VisitorServerFrame::Welcome { .. } = ws.recv().await else {
            panic!("welcome")
        };
        open.push(ws);
    }
    let mut ninth = s.visitor_ws(&v, 0).await;
    assert_eq!(ninth.closed_with().await, Some(1008));
}
