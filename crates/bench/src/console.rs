//! The agent console benchmark (`baton-bench console`): the release console in headless
//! Chromium against a real Baton server (SQLite), for one agent with 20 chats open, once with
//! 10 visitors queued and once with 500. It prints, for each queue, side by side:
//!
//! - the welcome: from the console page's navigation until both lists are on screen (every
//!   queued chat and the agent's own), and until all 20 transcripts have arrived;
//! - a visitor's message to the agent's screen: from the visitor socket's send (this
//!   process's clock) to the line appearing in the chat on screen (the page's clock: the
//!   same machine's), one message at a time;
//! - the console's JS heap after a full collection, and its DOM elements.
//!
//! A probe script runs in the page before the console's own (a DevTools command): it notes
//! when the lists are complete and when each `bench-…` line appears. Figures are printed,
//! never asserted.

use std::path::Path;

use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;

use super::widget::{browser, chromedriver, heap_mb, js, median, p90, until};
use super::*;

/// Chats the agent has open.
const OWNED: usize = 20;
/// The two queue lengths compared.
const QUEUES: [usize; 2] = [10, 500];
/// Visitor messages timed per run.
const SAMPLES: usize = 25;

/// Notes when `want` conversations are listed and all the agent's transcripts are in, and
/// when each `bench-…` line appears (Unix ms, to compare with the sender's clock).
fn probe(want: usize) -> String {
    format!(
        r#"(function () {{
  window.__listed = null; window.__transcripts = null; window.__shown = {{}};
  function look() {{
    if (window.__listed === null && document.querySelectorAll('.console-list__item').length >= {want})
      window.__listed = performance.now();
    var lines = document.querySelectorAll('.console-message__text');
    for (var i = Math.max(0, lines.length - 5); i < lines.length; i++) {{
      var t = lines[i].textContent;
      if (t.indexOf('bench-') === 0 && !(t in window.__shown))
        window.__shown[t] = performance.timeOrigin + performance.now();
    }}
  }}
  new MutationObserver(look).observe(document, {{ childList: true, subtree: true, characterData: true }});
}})();"#
    )
}

/// `Page.addScriptToEvaluateOnNewDocument` through chromedriver.
#[derive(Debug)]
struct Probe(String);

impl WebDriverCompatibleCommand for Probe {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.expect("a WebDriver session")
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": {"source": self.0},
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// What one run measured.
struct Run {
    queued: usize,
    listed_ms: f64,
    transcripts_ms: f64,
    to_screen: Vec<f64>,
    heap_mb: f64,
    nodes: u64,
}

fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

async fn one(
    server: &PathBuf,
    console_dir: &Path,
    driver: &str,
    chromium: &Path,
    queued: usize,
) -> Run {
    let s = start_baton_with(
        server,
        Kind::BatonSqlite,
        None,
        None,
        Some(console_dir),
        "[offloading]\nmax_chats = 0\n",
    )
    .await;
    // The agent takes 20 chats; then the queue fills.
    let token = login(&s, 0).await;
    let agent = connect(&s.ws(&format!("/api/v1/agent/ws?token={token}")), |_| {})
        .await
        .unwrap();
    let mut owned = vec![];
    for _ in 0..OWNED {
        let v = new_visitor(&s, true).await;
        let _ = agent
            .tx
            .send(json!({"type": "accept", "conversation_id": v.conversation}).to_string());
        owned.push(v);
    }
    for _ in 0..queued {
        new_visitor(&s, true).await;
    }
    // Every accept is in before the console opens.
    for _ in 0..200 {
        let mine: Value = s
            .http
            .get(s.url("/api/v1/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if mine["queue_length"].as_u64() == Some(queued as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let c: Client = browser(driver, chromium).await;
    c.issue_cmd(Probe(probe(queued + OWNED))).await.unwrap();
    // The session goes where the console keeps it (this tab's storage), then the console
    // opens with it: the welcome, both lists, every owned chat's transcript.
    c.goto(&s.url("/console/")).await.unwrap();
    c.execute(
        "sessionStorage.setItem('baton.console.token', arguments[0]);",
        vec![json!(token)],
    )
    .await
    .unwrap();
    c.refresh().await.unwrap();
    let listed = until(
        &c,
        "both lists",
        "return window.__listed;",
        Duration::from_secs(60),
    )
    .await
    .as_f64()
    .unwrap_or(f64::NAN);
    // Each owned chat is opened once its transcript arrives; open one more to see when they
    // are all in: the last one listed, on screen.
    let last = &owned[OWNED - 1];
    let short: String = last.id.trim_start_matches("v_").chars().take(8).collect();
    let transcripts = until(
        &c,
        "the last transcript",
        &format!(
            "const items = [...document.querySelectorAll('.console-list__item')]; \
             const it = items.find(i => i.textContent.indexOf('{short}') >= 0); \
             if (!it) return null; it.click(); \
             return document.querySelector('.console-state') ? performance.now() : null;"
        ),
        Duration::from_secs(60),
    )
    .await
    .as_f64()
    .unwrap_or(f64::NAN);

    // The visitor of the chat on screen writes; each line's way to the agent's screen.
    let visitor = connect(
        &s.ws(&format!("/api/v1/visitor/ws?token={}", last.token)),
        |_| {},
    )
    .await
    .unwrap();
    let _ = visitor
        .tx
        .send(json!({"type": "hello", "last_seq": last.head_seq}).to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut to_screen = vec![];
    for i in 0..SAMPLES {
        let text = format!("bench-q{queued}-{i}");
        let sent = epoch_ms();
        let _ = visitor
            .tx
            .send(json!({"type": "message", "client_msg_id": text, "text": text}).to_string());
        let shown = until(
            &c,
            &text,
            &format!("return window.__shown['{text}'] || null;"),
            Duration::from_secs(30),
        )
        .await
        .as_f64()
        .unwrap_or(f64::NAN);
        to_screen.push(shown - sent);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    to_screen.sort_by(f64::total_cmp);
    let heap = heap_mb(&c).await;
    let nodes = js(&c, "return document.querySelectorAll('*').length;")
        .await
        .as_u64()
        .unwrap_or(0);
    c.close().await.unwrap();
    drop((agent, visitor));
    Run {
        queued,
        listed_ms: listed,
        transcripts_ms: transcripts,
        to_screen,
        heap_mb: heap,
        nodes,
    }
}

pub async fn run(server: &PathBuf, console_dir: &Path, chromedriver_bin: &Path, chromium: &Path) {
    let (_driver, driver_url) = chromedriver(chromedriver_bin).await;
    let mut runs = vec![];
    for queued in QUEUES {
        runs.push(one(server, console_dir, &driver_url, chromium, queued).await);
    }
    println!(
        "\nAgent console in headless Chromium (release build; one agent with {OWNED} chats open, SQLite):\n"
    );
    let head: Vec<String> = runs
        .iter()
        .map(|r| format!("{} queued", r.queued))
        .collect();
    println!("  {:<52} {:>14} {:>14}", "figure", head[0], head[1]);
    let row = |label: &str, f: &dyn Fn(&Run) -> String| {
        println!("  {:<52} {:>14} {:>14}", label, f(&runs[0]), f(&runs[1]));
    };
    row("welcome: both lists on screen (from navigation)", &|r| {
        format!("{:.0} ms", r.listed_ms)
    });
    row("welcome: the last of the 20 transcripts shown", &|r| {
        format!("{:.0} ms", r.transcripts_ms)
    });
    row(
        &format!("visitor message → agent's screen (median of {SAMPLES})"),
        &|r| format!("{:.1} ms", median(&r.to_screen)),
    );
    row("visitor message → agent's screen (p90)", &|r| {
        format!("{:.1} ms", p90(&r.to_screen))
    });
    row("JS heap after a full collection", &|r| {
        format!("{:.2} MB", r.heap_mb)
    });
    row("DOM elements", &|r| r.nodes.to_string());
    println!(
        "\n  The {} queued column is the baseline: what the console costs with a short queue.",
        QUEUES[0]
    );
}
