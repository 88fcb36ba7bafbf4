//! Find / act / check helpers shared by the tests: real servers on 127.0.0.1:0, a real
//! SQLite file or a real PostgreSQL database, the in-process bus or a real NATS server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baton_protocol::bot::{BotMessage, HandoverDirective};
use baton_protocol::ids::VisitorId;
use baton_protocol::ws::{HandoverRequest, HandoverResponse, LoginResponse, VisitorCredentials};
use baton_server::{Config, Deps, Running};
use futures_util::{SinkExt, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Polls `check` until it returns `Some`, or fails with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where a test PostgreSQL server is (`cargo xtask test` makes sure one runs there).
pub fn postgres_url() -> String {
    std::env::var("BATON_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Where a test NATS server is.
pub fn nats_url() -> String {
    std::env::var("BATON_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A fresh, empty PostgreSQL database for one test; dropped by [`TestDb::drop_db`].
pub struct TestDb {
    pub url: String,
    name: String,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}_{}",
        std::process::id(),
        baton_server::auth::random_hex(6)
    )
}

impl TestDb {
    pub async fn create() -> Self {
        sqlx::any::install_default_drivers();
        let admin = postgres_url();
        let mut conn = connect_admin(&admin).await;
        let name = unique("baton_t_");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn drop_db(self) {
        let mut conn = connect_admin(&postgres_url()).await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await;
    }
}

async fn connect_admin(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::AnyConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is needed at {url} ({e}).\n`cargo xtask test` starts it; by hand: \
             pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start \
             (or set BATON_TEST_POSTGRES to a server you can create databases on)"
        )
    })
}

/// Fails, saying how to start NATS, when no NATS server answers.
pub async fn require_nats() {
    let url = nats_url();
    if let Err(e) = async_nats::connect(&url).await {
        panic!(
            "NATS is needed at {url} ({e}).\n`cargo xtask test` starts it; by hand: \
             nats-server -a 127.0.0.1 -p 4222 -js (or set BATON_TEST_NATS)"
        );
    }
}

/// Which database and bus a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's directory, the in-process bus.
    Sqlite,
    /// A fresh PostgreSQL database, the NATS bus.
    PostgresNats,
}

/// A server on a free port with its database in a temporary directory.
pub struct TestServer {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub db: Option<TestDb>,
}

/// Starts a server whose config file holds `config_text`.
pub async fn start(config_text: &str) -> TestServer {
    start_with(Backend::Sqlite, config_text, Deps::default()).await
}

/// Starts a server on a backend, with parts replaced.
pub async fn start_with(backend: Backend, config_text: &str, deps: Deps) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db = match backend {
        Backend::Sqlite => None,
        Backend::PostgresNats => {
            require_nats().await;
            Some(TestDb::create().await)
        }
    };
    let mut cfg = config(dir.path(), config_text);
    if let Some(db) = &db {
        cfg.database = db.url.clone();
        cfg.bus = nats_url();
        cfg.bus_prefix = unique("t");
    }
    let running = baton_server::spawn_with(cfg, deps).await.unwrap();
    TestServer {
        running,
        dir,
        http: reqwest::Client::new(),
        db,
    }
}

/// The test config: `config_text` over the defaults, on a free port, files in `dir`.
pub fn config(dir: &Path, config_text: &str) -> Config {
    let mut cfg = Config::load_str(Path::new("test.toml"), config_text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.database = dir.join("baton.sqlite3").to_string_lossy().into_owned();
    cfg.widget_dir = dir.join("widget");
    cfg.console_dir = dir.join("console");
    cfg
}

/// A second replica of a PostgreSQL + NATS server: the same database and bus subjects, its
/// own process state. Stop it before `of` (which drops the database).
pub async fn replica_of(of: &TestServer, config_text: &str) -> TestServer {
    replica_of_with(of, config_text, Deps::default()).await
}

/// [`replica_of`], with parts replaced.
pub async fn replica_of_with(of: &TestServer, config_text: &str, deps: Deps) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), config_text);
    let theirs = &of.service().config;
    cfg.database = theirs.database.clone();
    cfg.bus = theirs.bus.clone();
    cfg.bus_prefix = theirs.bus_prefix.clone();
    let running = baton_server::spawn_with(cfg, deps).await.unwrap();
    TestServer {
        running,
        dir,
        http: reqwest::Client::new(),
        db: None,
    }
}

/// Starts a server on an existing directory (to restart over the same SQLite file).
pub async fn start_in(dir: tempfile::TempDir, config_text: &str) -> TestServer {
    let cfg = config(dir.path(), config_text);
    let running = baton_server::spawn(cfg).await.unwrap();
    TestServer {
        running,
        dir,
        http: reqwest::Client::new(),
        db: None,
    }
}

/// A visitor with its credential, as a widget holds it.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub id: VisitorId,
    pub token: String,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.running.addr)
    }

    pub fn service(&self) -> &Arc<baton_server::Service> {
        &self.running.service
    }

    /// GETs `path` and decodes its JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(path, None, body).await
    }

    /// POSTs JSON with an optional bearer token.
    pub async fn post_as(&self, path: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A new visitor, as the widget gets one on first contact.
    pub async fn visitor(&self) -> Visitor {
        let (status, body) = self.post("/api/v1/visitor", &json!({})).await;
        assert_eq!(status, 201, "{body}");
        let c: VisitorCredentials = serde_json::from_value(body).unwrap();
        Visitor {
            id: c.visitor_id,
            token: c.token,
        }
    }

    /// A bot turn as a plain Rasa client sends it (no credential).
    pub async fn rasa(&self, sender: &str, message: &str) -> Vec<BotMessage> {
        let (status, body) = self
            .post(
                "/webhooks/rest/webhook",
                &json!({"sender": sender, "message": message}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// A bot turn from a widget's visitor.
    pub async fn bot(&self, v: &Visitor, message: &str) -> Vec<BotMessage> {
        let (status, body) = self
            .post_as(
                "/webhooks/rest/webhook",
                Some(&v.token),
                &json!({"sender": v.id, "message": message}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Asks for a person on behalf of `v`.
    pub async fn handover(&self, v: &Visitor) -> HandoverResponse {
        let req = HandoverRequest {
            visitor_id: v.id.clone(),
            directive: HandoverDirective::default(),
            page_url: Some("https://shop.example.com/cart".into()),
            locale: None,
        };
        let (status, body) = self
            .post_as(
                "/api/v1/handover",
                Some(&v.token),
                &serde_json::to_value(req).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Logs in an agent.
    pub async fn login_as(&self, email: &str, password: &str) -> LoginResponse {
        let (status, body) = self
            .post(
                "/api/v1/agent/login",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// Logs in the default demo agent.
    pub async fn login(&self) -> LoginResponse {
        self.login_as("agent@baton.example", "baton-demo").await
    }

    /// An agent console socket, past its welcome and status frames.
    pub async fn agent_ws(&self, token: &str) -> Ws {
        let mut a = Ws::connect(&self.ws_url(&format!("/api/v1/agent/ws?token={token}"))).await;
        let _welcome: baton_protocol::ws::AgentServerFrame = a.recv().await;
        let _status: baton_protocol::ws::AgentServerFrame = a.recv().await;
        a
    }

    /// A visitor socket that said hello.
    pub async fn visitor_ws(&self, v: &Visitor, last_seq: u64) -> Ws {
        let mut ws =
            Ws::connect(&self.ws_url(&format!("/api/v1/visitor/ws?token={}", v.token))).await;
        ws.send(&baton_protocol::ws::VisitorFrame::Hello { last_seq })
            .await;
        ws
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await.unwrap();
        if let Some(db) = self.db {
            db.drop_db().await;
        }
        self.dir
    }
}

/// A visitor that said `first` to the bot, asked for a person and waits, with its socket
/// open.
pub async fn queued_visitor(
    s: &TestServer,
    first: &str,
) -> (Visitor, baton_protocol::ids::ConversationId, Ws) {
    let v = s.visitor().await;
    s.bot(&v, first).await;
    let session = s.handover(&v).await.session.expect("queued");
    let ws = s.visitor_ws(&v, session.head_seq).await;
    (v, session.conversation_id, ws)
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking JSON frames. On an agent socket it passes over `team`
/// frames (they come whenever presence or load changes anywhere) unless made with
/// [`Ws::connect_with_team`].
pub struct Ws(pub Stream, bool);

/// How long a test waits for a frame.
pub const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    pub async fn connect(url: &str) -> Self {
        let (s, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self(s, url.contains("/api/v1/agent/ws"))
    }

    /// An agent socket whose `team` frames are read like any other.
    pub async fn connect_with_team(url: &str) -> Self {
        let (s, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self(s, false)
    }

    pub async fn send<T: Serialize>(&mut self, frame: &T) {
        self.send_raw(&serde_json::to_string(frame).unwrap()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.0.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON frame (control frames skipped); fails after [`WAIT`].
    pub async fn recv<T: DeserializeOwned>(&mut self) -> T {
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .unwrap();
            match msg {
                Message::Text(t) if self.1 && t.starts_with(r#"{"type":"team""#) => {}
                Message::Text(t) => {
                    return serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"));
                }
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// Frames until one matches; returns it. Fails after [`WAIT`] without a match.
    pub async fn recv_until<T: DeserializeOwned + std::fmt::Debug>(
        &mut self,
        mut pred: impl FnMut(&T) -> bool,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame: T = tokio::time::timeout(remaining, self.recv())
                .await
                .expect("matching frame in time");
            if pred(&frame) {
                return frame;
            }
        }
    }

    /// The close frame's code, waiting up to [`WAIT`].
    pub async fn closed_with(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(c))) => return c.map(|c| c.code.into()),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }
}
