//! `baton-bench`: the server benchmark behind `cargo xtask bench`.
//!
//! `baton-bench run --server target/release/baton-server [--postgres URL]` starts, one after
//! the other, a bare axum WebSocket relay (this binary's `relay` mode: no storage, the
//! baseline), Baton on SQLite and Baton on PostgreSQL, each as its own process, and drives
//! each with the same load from this process: 100 chats over 20 agents, visitor messages at
//! 1,000 and 3,000 per second, handovers with an empty queue and with 2,000 visitors queued,
//! and 10,000 idle visitor sockets. It prints each figure beside the baseline and the goal,
//! and, from Baton's `/metrics`, where the time went. Figures are printed, never asserted.
//!
//! `baton-bench widget --server … --widget-dir dist` runs the widget benchmark in headless
//! Chromium (see `widget.rs`), and `baton-bench console --server … --console-dir …` the agent
//! console's (see `console.rs`).

mod console;
mod relay;
mod widget;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(name = "baton-bench")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Serve the bare relay (the baseline).
    Relay {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Run the benchmark.
    Run {
        /// The baton-server binary (a release build).
        #[arg(long)]
        server: PathBuf,
        /// A PostgreSQL server where databases may be created; without it, PostgreSQL is
        /// skipped (and the output says so).
        #[arg(long)]
        postgres: Option<String>,
        /// Idle sockets for the memory figure.
        #[arg(long, default_value_t = 10_000)]
        idle: usize,
        /// Seconds per relay phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Run the agent console benchmark in headless Chromium.
    Console {
        /// The baton-server binary (a release build).
        #[arg(long)]
        server: PathBuf,
        /// The release build of the console (its Trunk `dist`).
        #[arg(long)]
        console_dir: PathBuf,
        #[arg(long, default_value = "/usr/bin/chromedriver")]
        chromedriver: PathBuf,
        #[arg(long, default_value = "/usr/bin/chromium")]
        chromium: PathBuf,
    },
    /// Run the widget benchmark in headless Chromium.
    Widget {
        /// The baton-server binary (a release build).
        #[arg(long)]
        server: PathBuf,
        /// The release build of the widget (Trunk's `dist`).
        #[arg(long)]
        widget_dir: PathBuf,
        #[arg(long, default_value = "/usr/bin/chromedriver")]
        chromedriver: PathBuf,
        #[arg(long, default_value = "/usr/bin/chromium")]
        chromium: PathBuf,
    },
}

const CHATS: usize = 100;
const AGENTS: usize = 20;
const QUEUED: usize = 2_000;
const HANDOVERS: usize = 100;
const METRICS_TOKEN: &str = "bench-metrics";

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// The system under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bare,
    BatonSqlite,
    BatonPostgres,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Bare => "bare relay",
            Kind::BatonSqlite => "Baton, SQLite",
            Kind::BatonPostgres => "Baton, PostgreSQL",
        }
    }
}

/// A server process.
struct Server {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    pid: u32,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn ws(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// CPU time used so far (user + system), from /proc.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }

    /// Resident memory, from /proc.
    fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    async fn metrics(&self) -> HashMap<String, (f64, f64)> {
        let mut out = HashMap::new();
        let Ok(r) = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
        else {
            return out;
        };
        let text = r.text().await.unwrap_or_default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            let Some(stage) = key.split('"').nth(1) else {
                continue;
            };
            let e = out.entry(stage.to_owned()).or_insert((0.0, 0.0));
            if key.starts_with("baton_stage_total") {
                e.0 = value;
            } else {
                e.1 = value;
            }
        }
        out
    }
}

/// Reads the child's stdout until `marker` and returns the rest of that line.
async fn wait_line(child: &mut Child, marker: &str) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split_once(marker) {
                return rest.1.trim().to_owned();
            }
        }
        panic!("the server exited before printing {marker:?}");
    })
    .await
    .expect("the server starts");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}

async fn start_bare() -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["relay", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = wait_line(&mut child, "listening on").await.parse().unwrap();
    Server {
        kind: Kind::Bare,
        pid: child.id().unwrap(),
        child,
        addr,
        http: reqwest::Client::new(),
        _dir: None,
    }
}

async fn start_baton(
    server: &PathBuf,
    kind: Kind,
    database: Option<String>,
    widget_dir: Option<&std::path::Path>,
) -> Server {
    start_baton_with(server, kind, database, widget_dir, None, "").await
}

/// [`start_baton`] serving the console from `console_dir`, with `extra` configuration.
async fn start_baton_with(
    server: &PathBuf,
    kind: Kind,
    database: Option<String>,
    widget_dir: Option<&std::path::Path>,
    console_dir: Option<&std::path::Path>,
    extra: &str,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let database = database.unwrap_or_else(|| {
        dir.path()
            .join("bench.sqlite3")
            .to_string_lossy()
            .into_owned()
    });
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndatabase = \"{database}\"\nmetrics_token = \"{METRICS_TOKEN}\"\n\
         max_connections = 40000\nwidget_dir = \"{w}\"\nconsole_dir = \"{d}\"\n\
         [limits]\nvisitor_per_minute = 100000000\nip_per_minute = 100000000\n\
         new_visitors_per_hour = 100000000\nlogin_failures = 100000\n",
        d = console_dir.unwrap_or(dir.path()).display(),
        w = widget_dir.unwrap_or(dir.path()).display()
    );
    config.push_str(extra);
    for i in 0..AGENTS {
        config.push_str(&format!(
            "[[agents]]\nemail = \"a{i}@bench\"\nname = \"Agent {i}\"\npassword = \"pw{i}\"\n"
        ));
    }
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(server)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let line = wait_line(&mut child, "demo page:").await;
    let addr = line
        .trim_start_matches("http://")
        .trim_end_matches("/demo/")
        .parse()
        .unwrap();
    Server {
        kind,
        pid: child.id().unwrap(),
        child,
        addr,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        _dir: Some(dir),
    }
}

/// Latencies (µs) the agents saw while a phase was on.
#[derive(Default)]
struct Recorder {
    on: AtomicBool,
    relayed: Mutex<Vec<u64>>,
    received: AtomicU64,
}

/// A socket with a writer task; its reader runs `on_text` on every text frame.
struct Conn {
    tx: mpsc::UnboundedSender<String>,
}

async fn connect(url: &str, on_text: impl FnMut(&str) + Send + 'static) -> Result<Conn, String> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        // Dropped: close the socket, so the server sees it go.
        let _ = sink.close().await;
    });
    let mut on_text = on_text;
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Text(t) = msg {
                on_text(t.as_str());
            }
        }
    });
    Ok(Conn { tx })
}

/// A Baton visitor: its credential and, once queued, its conversation.
struct Visitor {
    id: String,
    token: String,
    conversation: String,
    head_seq: u64,
}

async fn new_visitor(s: &Server, handover: bool) -> Visitor {
    let c: Value = s
        .http
        .post(s.url("/api/v1/visitor"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        c["visitor_id"].as_str().unwrap().to_owned(),
        c["token"].as_str().unwrap().to_owned(),
    );
    let mut v = Visitor {
        id,
        token,
        conversation: String::new(),
        head_seq: 0,
    };
    if handover {
        let h = handover_request(s, &v).await;
        v.conversation = h["session"]["conversation_id"].as_str().unwrap().to_owned();
        v.head_seq = h["session"]["head_seq"].as_u64().unwrap();
    }
    v
}

/// Logs bench agent `i` in; its session token.
async fn login(s: &Server, i: usize) -> String {
    let login: Value = s
        .http
        .post(s.url("/api/v1/agent/login"))
        .json(&json!({"email": format!("a{i}@bench"), "password": format!("pw{i}")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_owned()
}

async fn handover_request(s: &Server, v: &Visitor) -> Value {
    s.http
        .post(s.url("/api/v1/handover"))
        .bearer_auth(&v.token)
        .json(&json!({"visitor_id": v.id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// 100 chats, each with a visitor socket, over 20 agent sockets; every agent socket
/// records the latency of visitor messages and reports waiting conversations.
struct Setup {
    visitors: Vec<Conn>,
    agents: Vec<Conn>,
    recorder: Arc<Recorder>,
    waiting: mpsc::UnboundedReceiver<(String, Instant)>,
}

async fn setup(s: &Server) -> Setup {
    let recorder = Arc::new(Recorder::default());
    let (waiting_tx, waiting) = mpsc::unbounded_channel();
    let mut agents = vec![];
    let mut visitors = vec![];
    if s.kind == Kind::Bare {
        for a in 0..AGENTS {
            let chats: Vec<String> = (a..CHATS).step_by(AGENTS).map(|c| c.to_string()).collect();
            let rec = recorder.clone();
            let wtx = waiting_tx.clone();
            let url = s.ws(&format!("/agent?agent={a}&chats={}", chats.join(",")));
            agents.push(
                connect(&url, move |text| {
                    if let Ok(t) = text.parse::<u64>() {
                        record(&rec, t);
                    } else if a == 0 && text.starts_with("{\"type\":\"waiting\"") {
                        let v: Value = serde_json::from_str(text).unwrap_or_default();
                        let _ = wtx.send((v["chat"].to_string(), Instant::now()));
                    }
                })
                .await
                .unwrap(),
            );
        }
        for c in 0..CHATS {
            visitors.push(
                connect(&s.ws(&format!("/visitor?chat={c}")), |_| {})
                    .await
                    .unwrap(),
            );
        }
        return Setup {
            visitors,
            agents,
            recorder,
            waiting,
        };
    }
    let transcripts = Arc::new(AtomicU64::new(0));
    for a in 0..AGENTS {
        let token = login(s, a).await;
        let (rec, wtx, tr) = (recorder.clone(), waiting_tx.clone(), transcripts.clone());
        agents.push(
            connect(
                &s.ws(&format!("/api/v1/agent/ws?token={token}")),
                move |text| {
                    // Cheap checks first: this runs for every frame at up to 3,000 a second.
                    if text.starts_with("{\"type\":\"event\"") {
                        let v: Value = serde_json::from_str(text).unwrap_or_default();
                        if v["event"]["role"] == "visitor"
                            && let Some(t) =
                                v["event"]["text"].as_str().and_then(|t| t.parse().ok())
                        {
                            record(&rec, t);
                        }
                    } else if text.starts_with("{\"type\":\"waiting\"") && a == 0 {
                        let v: Value = serde_json::from_str(text).unwrap_or_default();
                        let id = v["conversation"]["conversation_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = wtx.send((id, Instant::now()));
                    } else if text.starts_with("{\"type\":\"transcript\"") {
                        tr.fetch_add(1, Ordering::Relaxed);
                    }
                },
            )
            .await
            .unwrap(),
        );
    }
    for c in 0..CHATS {
        let v = new_visitor(s, true).await;
        let conn = connect(
            &s.ws(&format!("/api/v1/visitor/ws?token={}", v.token)),
            |_| {},
        )
        .await
        .unwrap();
        let _ = conn
            .tx
            .send(json!({"type": "hello", "last_seq": v.head_seq}).to_string());
        visitors.push(conn);
        let _ = agents[c % AGENTS]
            .tx
            .send(json!({"type": "accept", "conversation_id": v.conversation}).to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while transcripts.load(Ordering::Relaxed) < CHATS as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut waiting = waiting;
    while waiting.try_recv().is_ok() {}
    Setup {
        visitors,
        agents,
        recorder,
        waiting,
    }
}

fn record(rec: &Recorder, sent_us: u64) {
    rec.received.fetch_add(1, Ordering::Relaxed);
    if rec.on.load(Ordering::Relaxed) {
        let lat = now_us().saturating_sub(sent_us);
        rec.relayed.lock().unwrap().push(lat);
    }
}

/// Percentile of sorted microseconds, in milliseconds.
fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What one relay phase measured.
struct RelayFigures {
    p50: f64,
    p99: f64,
    max: f64,
    sent: u64,
    received: usize,
    cpu_percent: f64,
    stages: Vec<(String, f64, f64)>,
}

async fn relay_phase(s: &Server, setup: &Setup, rate: u64, seconds: u64) -> RelayFigures {
    setup.recorder.relayed.lock().unwrap().clear();
    let before = s.metrics().await;
    let cpu0 = s.cpu();
    let t0 = Instant::now();
    setup.recorder.on.store(true, Ordering::Relaxed);
    let total = rate * seconds;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total {
        tick.tick().await;
        let due = (t0.elapsed().as_micros() as u64 * rate / 1_000_000).min(total);
        while sent < due {
            let v = &setup.visitors[(sent as usize) % setup.visitors.len()];
            let text = now_us().to_string();
            let frame = if s.kind == Kind::Bare {
                text
            } else {
                format!(
                    "{{\"type\":\"message\",\"client_msg_id\":\"b{sent}-{rate}\",\"text\":\"{text}\"}}"
                )
            };
            let _ = v.tx.send(frame);
            sent += 1;
        }
    }
    let wall = t0.elapsed();
    // Stragglers.
    let deadline = Instant::now() + Duration::from_secs(5);
    while setup.recorder.relayed.lock().unwrap().len() < sent as usize && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup.recorder.on.store(false, Ordering::Relaxed);
    let cpu = s.cpu().saturating_sub(cpu0);
    let after = s.metrics().await;
    let mut lat = setup.recorder.relayed.lock().unwrap().clone();
    lat.sort_unstable();
    let mut stages: Vec<(String, f64, f64)> = after
        .iter()
        .filter_map(|(k, (n, secs))| {
            let (n0, s0) = before.get(k).copied().unwrap_or((0.0, 0.0));
            let dn = n - n0;
            (dn > 0.0).then(|| {
                (
                    k.clone(),
                    dn / sent as f64,
                    (secs - s0) * 1000.0 / sent as f64,
                )
            })
        })
        .collect();
    stages.sort_by(|a, b| b.2.total_cmp(&a.2));
    RelayFigures {
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        max: pct(&lat, 1.0),
        sent,
        received: lat.len(),
        cpu_percent: cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
        stages,
    }
}

/// Stage calls and milliseconds per unit of work between two metrics readings, costliest
/// first.
fn stage_delta(
    before: &HashMap<String, (f64, f64)>,
    after: &HashMap<String, (f64, f64)>,
    units: f64,
) -> Vec<(String, f64, f64)> {
    let mut stages: Vec<(String, f64, f64)> = after
        .iter()
        .filter_map(|(k, (n, secs))| {
            let (n0, s0) = before.get(k).copied().unwrap_or((0.0, 0.0));
            let dn = n - n0;
            (dn > 0.0).then(|| (k.clone(), dn / units, (secs - s0) * 1000.0 / units))
        })
        .collect();
    stages.sort_by(|a, b| b.2.total_cmp(&a.2));
    stages
}

/// Handover → the agent console sees it, `n` times; milliseconds, sorted.
async fn handovers(s: &Server, setup: &mut Setup, n: usize, accept: bool) -> Vec<u64> {
    let mut lat = vec![];
    for i in 0..n {
        let (id, t0) = if s.kind == Kind::Bare {
            let chat = 1_000_000 + i;
            let t0 = Instant::now();
            s.http
                .post(s.url(&format!("/handover?chat={chat}")))
                .send()
                .await
                .unwrap();
            (chat.to_string(), t0)
        } else {
            let v = new_visitor(s, false).await;
            let t0 = Instant::now();
            let h = handover_request(s, &v).await;
            (
                h["session"]["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                t0,
            )
        };
        let seen = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let (got, at) = setup.waiting.recv().await.expect("agent 0 listens");
                if got == id {
                    return at;
                }
            }
        })
        .await
        .expect("the agent sees the handover");
        lat.push(seen.duration_since(t0).as_micros() as u64);
        if accept && s.kind != Kind::Bare {
            // Keep the queue as it was: the agent takes it.
            let _ = setup.agents[0]
                .tx
                .send(json!({"type": "accept", "conversation_id": id}).to_string());
        }
    }
    lat.sort_unstable();
    lat
}

/// Runs `f` over `items` with at most `n` at once.
async fn in_parallel<T, F, Fut, R>(items: Vec<T>, n: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    futures_util::stream::iter(items.into_iter().map(f))
        .buffered(n)
        .collect()
        .await
}

/// Opens `n` idle visitor sockets; returns the server's RSS per socket in KB.
async fn idle_sockets(s: &Server, n: usize) -> (f64, Vec<Conn>) {
    let welcomed = Arc::new(AtomicU64::new(0));
    let visitors = if s.kind == Kind::Bare {
        vec![]
    } else {
        in_parallel((0..n).collect(), 32, |_| new_visitor(s, false)).await
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = s.rss_kb();
    let urls: Vec<String> = if s.kind == Kind::Bare {
        (0..n)
            .map(|i| s.ws(&format!("/visitor?chat={}", 2_000_000 + i)))
            .collect()
    } else {
        visitors
            .iter()
            .map(|v| s.ws(&format!("/api/v1/visitor/ws?token={}", v.token)))
            .collect()
    };
    let bare = s.kind == Kind::Bare;
    let conns = in_parallel(urls, 64, |url| {
        let w = welcomed.clone();
        async move {
            let conn = connect(&url, move |_| {
                w.fetch_add(1, Ordering::Relaxed);
            })
            .await
            .ok()?;
            if !bare {
                let _ = conn.tx.send("{\"type\":\"hello\",\"last_seq\":0}".into());
            }
            Some(conn)
        }
    })
    .await;
    let conns: Vec<Conn> = conns.into_iter().flatten().collect();
    if !bare {
        let deadline = Instant::now() + Duration::from_secs(60);
        while (welcomed.load(Ordering::Relaxed) as usize) < conns.len() && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = s.rss_kb();
    let per = after.saturating_sub(before) as f64 / conns.len().max(1) as f64;
    (per, conns)
}

/// What the queue phase measured.
#[derive(Default)]
struct QueueFigures {
    handover_p50: f64,
    handover_p99: f64,
    cancel_cpu_ms: f64,
    positions_pushed: u64,
    status_max_ms: f64,
    welcome_ms: f64,
}

async fn queue_phase(s: &Server, setup: &mut Setup) -> QueueFigures {
    let mut f = QueueFigures::default();
    // 2,000 visitors waiting, each with its socket open (as widgets would be).
    let pushed = Arc::new(AtomicU64::new(0));
    // The first one alone, so it is surely first in line; the rest sixteen at a time.
    let open = |i: usize| {
        let pushed = pushed.clone();
        async move {
            if s.kind == Kind::Bare {
                return connect(&s.ws(&format!("/visitor?chat={}", 3_000_000 + i)), |_| {})
                    .await
                    .ok();
            }
            let v = new_visitor(s, true).await;
            let conn = connect(
                &s.ws(&format!("/api/v1/visitor/ws?token={}", v.token)),
                move |t| {
                    if t.starts_with("{\"type\":\"queue\"") {
                        pushed.fetch_add(1, Ordering::Relaxed);
                    }
                },
            )
            .await
            .ok()?;
            let _ = conn
                .tx
                .send(json!({"type": "hello", "last_seq": v.head_seq}).to_string());
            Some(conn)
        }
    };
    let mut queued: Vec<Option<Conn>> = vec![open(0).await];
    queued.extend(in_parallel((1..QUEUED).collect(), 16, open).await);
    while setup.waiting.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lat = handovers(s, setup, HANDOVERS, true).await;
    f.handover_p50 = pct(&lat, 0.5);
    f.handover_p99 = pct(&lat, 0.99);
    if s.kind == Kind::Bare {
        return f;
    }
    // The first in line leaves: everyone behind moves up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    pushed.store(0, Ordering::Relaxed);
    let cpu0 = s.cpu();
    if let Some(Some(first)) = queued.first() {
        let _ = first.tx.send("{\"type\":\"cancel\"}".into());
    }
    let mut worst = Duration::ZERO;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        let _ = s.http.get(s.url("/api/v1/status")).send().await;
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.cancel_cpu_ms = s.cpu().saturating_sub(cpu0).as_secs_f64() * 1000.0;
    f.positions_pushed = pushed.load(Ordering::Relaxed);
    f.status_max_ms = worst.as_secs_f64() * 1000.0;
    // A console connecting while 2,000 wait.
    let token = login(s, 1).await;
    let t = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _console = connect(
        &s.ws(&format!("/api/v1/agent/ws?token={token}")),
        move |text| {
            if text.starts_with("{\"type\":\"welcome\"") {
                let _ = tx.send(Instant::now());
            }
        },
    )
    .await
    .unwrap();
    if let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        f.welcome_ms = at.duration_since(t).as_secs_f64() * 1000.0;
    }
    drop(queued);
    f
}

/// Everything measured on one server.
struct Figures {
    kind: Kind,
    relay_1k: RelayFigures,
    relay_3k: RelayFigures,
    handover_empty_p50: f64,
    handover_empty_p99: f64,
    handover_stages: Vec<(String, f64, f64)>,
    queue: QueueFigures,
    rss_per_socket_kb: f64,
}

async fn measure(mut s: Server, seconds: u64, idle: usize) -> Figures {
    eprintln!(
        "\n== {}: setting up {CHATS} chats over {AGENTS} agents",
        s.kind.label()
    );
    let mut setup = setup(&s).await;
    eprintln!("   relaying 1,000 msg/s for {seconds} s");
    let relay_1k = relay_phase(&s, &setup, 1_000, seconds).await;
    eprintln!("   relaying 3,000 msg/s for {seconds} s");
    let relay_3k = relay_phase(&s, &setup, 3_000, seconds).await;
    eprintln!("   {HANDOVERS} handovers, empty queue");
    let m0 = s.metrics().await;
    let lat = handovers(&s, &mut setup, HANDOVERS, true).await;
    let handover_stages = stage_delta(&m0, &s.metrics().await, HANDOVERS as f64);
    let handover_empty_p50 = pct(&lat, 0.5);
    let handover_empty_p99 = pct(&lat, 0.99);
    eprintln!("   {idle} idle visitor sockets");
    let (rss_per_socket_kb, idle_conns) = idle_sockets(&s, idle).await;
    drop(idle_conns);
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("   {QUEUED} visitors queued, {HANDOVERS} more handovers, a cancel at the front");
    let queue = queue_phase(&s, &mut setup).await;
    drop(setup);
    let _ = s.child.kill().await;
    Figures {
        kind: s.kind,
        relay_1k,
        relay_3k,
        handover_empty_p50,
        handover_empty_p99,
        handover_stages,
        queue,
        rss_per_socket_kb,
    }
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn mark(v: f64, goal: f64) -> &'static str {
    if v <= goal { " ✓" } else { " ✗" }
}

fn report(all: &[Figures], skipped: Option<&str>) {
    let col = 22;
    let header = |name: &str| {
        let mut line = format!("  {name:<44}");
        for f in all {
            line.push_str(&format!("{:>col$}", f.kind.label()));
        }
        line.push_str("   goal");
        line
    };
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String, goal: &str| {
        let mut line = format!("  {name:<44}");
        for f in all {
            line.push_str(&format!("{:>col$}", cell(f)));
        }
        line.push_str(&format!("   {goal}"));
        println!("{line}");
    };
    println!("\nServer benchmark: 100 chats over 20 agents, release builds, this machine.");
    println!("Each figure beside the bare axum WebSocket relay run in the same bench.\n");
    println!("{}", header("figure"));
    row(
        "relay visitor → agent, p99 at 1,000 msg/s",
        &|f| {
            format!(
                "{}{}",
                ms(f.relay_1k.p99),
                goal_mark(f, f.relay_1k.p99, 10.0)
            )
        },
        "≤ 10 ms",
    );
    row(
        "  p50 / max",
        &|f| format!("{} / {}", ms(f.relay_1k.p50), ms(f.relay_1k.max)),
        "",
    );
    row(
        "  server CPU",
        &|f| {
            format!(
                "{:.0} %{}",
                f.relay_1k.cpu_percent,
                goal_mark(f, f.relay_1k.cpu_percent, 30.0)
            )
        },
        "≤ 30 %",
    );
    row(
        "  delivered",
        &|f| format!("{}/{}", f.relay_1k.received, f.relay_1k.sent),
        "all",
    );
    row(
        "relay p99 at 3,000 msg/s",
        &|f| {
            format!(
                "{}{}",
                ms(f.relay_3k.p99),
                goal_mark(f, f.relay_3k.p99, 25.0)
            )
        },
        "≤ 25 ms",
    );
    row(
        "  server CPU / delivered",
        &|f| {
            format!(
                "{:.0} % {}/{}",
                f.relay_3k.cpu_percent, f.relay_3k.received, f.relay_3k.sent
            )
        },
        "",
    );
    row(
        "handover → agent sees it, p99, empty queue",
        &|f| {
            format!(
                "{}{}",
                ms(f.handover_empty_p99),
                goal_mark(f, f.handover_empty_p99, 5.0)
            )
        },
        "≤ 5 ms",
    );
    row("  p50", &|f| ms(f.handover_empty_p50), "");
    row(
        "same with 2,000 visitors queued",
        &|f| {
            format!(
                "{}{}",
                ms(f.queue.handover_p99),
                goal_mark(f, f.queue.handover_p99, 50.0)
            )
        },
        "≤ 50 ms",
    );
    row("  p50", &|f| ms(f.queue.handover_p50), "");
    row(
        "cancel at the front of 2,000: server CPU",
        &|f| {
            if f.kind == Kind::Bare {
                "—".into()
            } else {
                format!("{:.0} ms", f.queue.cancel_cpu_ms)
            }
        },
        "(skeleton: 27 s)",
    );
    row(
        "  positions pushed / worst status request",
        &|f| {
            if f.kind == Kind::Bare {
                "—".into()
            } else {
                format!(
                    "{} / {}",
                    f.queue.positions_pushed,
                    ms(f.queue.status_max_ms)
                )
            }
        },
        "1,999 / (skeleton: 14 s)",
    );
    row(
        "console welcome with 2,000 waiting",
        &|f| {
            if f.kind == Kind::Bare {
                "—".into()
            } else {
                ms(f.queue.welcome_ms)
            }
        },
        "(skeleton: 26–31 s)",
    );
    row(
        "RSS per idle visitor socket",
        &|f| {
            format!(
                "{:.0} KB{}",
                f.rss_per_socket_kb,
                goal_mark(f, f.rss_per_socket_kb, 40.0)
            )
        },
        "≤ 40 KB",
    );
    if let Some(why) = skipped {
        println!("\n  PostgreSQL was not measured: {why}");
    }
    for f in all.iter().filter(|f| f.kind != Kind::Bare) {
        let missed = f.relay_1k.p99 > 10.0 || f.relay_1k.cpu_percent > 30.0;
        println!(
            "\n  Where the time goes ({}, per relayed message at 1,000 msg/s){}:",
            f.kind.label(),
            if missed {
                " — a goal is missed; the top stages are the next step"
            } else {
                ""
            }
        );
        for (stage, calls, ms_per) in f.relay_1k.stages.iter().take(8) {
            println!("    {stage:<28} {calls:>5.2} calls  {ms_per:>7.3} ms");
        }
        let missed = f.handover_empty_p99 > 5.0;
        println!(
            "  Where the time goes ({}, per handover with an empty queue){}:",
            f.kind.label(),
            if missed {
                " — a goal is missed; the top stages are the next step"
            } else {
                ""
            }
        );
        for (stage, calls, ms_per) in f.handover_stages.iter().take(8) {
            println!("    {stage:<28} {calls:>5.2} calls  {ms_per:>7.3} ms");
        }
    }
}

fn goal_mark(f: &Figures, v: f64, goal: f64) -> &'static str {
    if f.kind == Kind::Bare || v.is_nan() {
        ""
    } else {
        mark(v, goal)
    }
}

async fn create_database(admin: &str) -> Result<String, String> {
    // A fresh database through psql, so the bench needs no database driver of its own.
    let name = "baton_bench";
    let run = |sql: String| {
        std::process::Command::new("psql")
            .args([admin, "-qc", &sql])
            .status()
            .map_err(|e| format!("psql: {e}"))
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("psql failed: {sql}"))
                }
            })
    };
    run(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    run(format!("CREATE DATABASE {name}"))?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.mode {
        Mode::Relay { listen } => relay::serve(listen).await,
        Mode::Widget {
            server,
            widget_dir,
            chromedriver,
            chromium,
        } => widget::run(&server, &widget_dir, &chromedriver, &chromium).await,
        Mode::Console {
            server,
            console_dir,
            chromedriver,
            chromium,
        } => console::run(&server, &console_dir, &chromedriver, &chromium).await,
        Mode::Run {
            server,
            postgres,
            idle,
            seconds,
        } => {
            epoch();
            let _ = rlimit::increase_nofile_limit(u64::MAX);
            let mut all = vec![];
            all.push(measure(start_bare().await, seconds, idle).await);
            all.push(
                measure(
                    start_baton(&server, Kind::BatonSqlite, None, None).await,
                    seconds,
                    idle,
                )
                .await,
            );
            let mut skipped = None;
            match postgres {
                Some(admin) => match create_database(&admin).await {
                    Ok(url) => all.push(
                        measure(
                            start_baton(&server, Kind::BatonPostgres, Some(url), None).await,
                            seconds,
                            idle,
                        )
                        .await,
                    ),
                    Err(e) => skipped = Some(e),
                },
                None => skipped = Some("no --postgres given".into()),
            }
            report(&all, skipped.as_deref());
        }
    }
}
