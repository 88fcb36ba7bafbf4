//! Find / act / check helpers shared by the tests.

use std::path::Path;
use std::time::Duration;

use baton_protocol::bot::{BotMessage, HandoverDirective};
use baton_protocol::ids::VisitorId;
use baton_protocol::ws::{HandoverRequest, HandoverResponse, LoginResponse};
use baton_server::{Config, Running};
use futures_util::{SinkExt, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A server on a free port with its database in a temporary directory.
pub struct TestServer {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// Starts a server whose config file holds `config_text`.
pub async fn start(config_text: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, config_text).await
}

/// Starts a server on an existing directory (to restart over the same database).
pub async fn start_in(dir: tempfile::TempDir, config_text: &str) -> TestServer {
    let mut cfg = Config::load_str(Path::new("test.toml"), config_text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.database = dir.path().join("baton.sqlite3");
    cfg.widget_dir = dir.path().join("widget");
    cfg.console_dir = dir.path().join("console");
    let running = baton_server::spawn(cfg).await.unwrap();
    TestServer {
        running,
        dir,
        http: reqwest::Client::new(),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.running.addr)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends a visitor message to the bot endpoint and returns its answer.
    pub async fn bot(&self, visitor: &str, message: &str) -> Vec<BotMessage> {
        let (status, body) = self
            .post(
                "/webhooks/rest/webhook",
                &json!({"sender": visitor, "message": message}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Asks for a person on behalf of `visitor`.
    pub async fn handover(&self, visitor: &str) -> HandoverResponse {
        let req = HandoverRequest {
            visitor_id: VisitorId::from(visitor),
            directive: HandoverDirective::default(),
        };
        let (status, body) = self
            .post("/api/v1/handover", &serde_json::to_value(req).unwrap())
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Logs in the default demo agent.
    pub async fn login(&self) -> LoginResponse {
        let (status, body) = self
            .post(
                "/api/v1/agent/login",
                &json!({"email": "agent@baton.example", "password": "baton-demo"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await.unwrap();
        self.dir
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking JSON frames.
pub struct Ws(pub Stream);

impl Ws {
    pub async fn connect(url: &str) -> Self {
        let (s, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self(s)
    }

    pub async fn send<T: Serialize>(&mut self, frame: &T) {
        self.send_raw(&serde_json::to_string(frame).unwrap()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.0.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON frame (control frames skipped); fails after 5 s.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> T {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("a frame within 5 s")
                .expect("socket open")
                .unwrap();
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"));
                }
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// Frames until one matches; returns it. Fails after 5 s without a match.
    pub async fn recv_until<T: DeserializeOwned + std::fmt::Debug>(
        &mut self,
        mut pred: impl FnMut(&T) -> bool,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame: T = tokio::time::timeout(remaining, self.recv())
                .await
                .expect("matching frame within 5 s");
            if pred(&frame) {
                return frame;
            }
        }
    }

    /// The close frame's code, waiting up to 5 s.
    pub async fn closed_with(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("close within 5 s")
            {
                Some(Ok(Message::Close(c))) => return c.map(|c| c.code.into()),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }
}
