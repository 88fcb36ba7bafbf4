//! Browser end-to-end test: the real server (in-process, on 127.0.0.1:0, with a real SQLite
//! file), the built widget and console, and two real headless Chromium sessions driven over
//! WebDriver: one is the visitor on the demo host page, the other the agent in the console.
//!
//! Needs the release builds of the widget and console (`cargo xtask test` makes them; paths
//! from BATON_WIDGET_DIR / BATON_CONSOLE_DIR) and chromedriver (CHROMEDRIVER, default
//! /usr/bin/chromedriver).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::{Element, ShadowRoot};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir_from_env(var: &str, default: &str) -> PathBuf {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(default));
    assert!(
        dir.join("index.html").exists(),
        "{} has no index.html: build the widget and console first (cargo xtask test does), or set {var}",
        dir.display()
    );
    dir
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    /// Held so chromedriver lives as long as the test (killed on drop).
    _child: Child,
    url: String,
}

async fn start_chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (cargo xtask test installs it)"));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver {
                _child: child,
                url: format!("http://127.0.0.1:{port}"),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,800"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Polls `check` until it returns `Some`, or fails with `what` after WAIT.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The visitor's side: the demo host page with the widget in its shadow root.
struct Visitor(Client);

impl Visitor {
    async fn root(&self) -> ShadowRoot {
        self.0
            .find(Locator::Css("#baton-widget"))
            .await
            .unwrap()
            .shadow_root()
            .await
            .unwrap()
    }

    async fn find(&self, css: &str) -> Option<Element> {
        self.root().await.find(Locator::Css(css)).await.ok()
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = vec![];
        for e in self
            .root()
            .await
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
        {
            out.push(e.text().await.unwrap_or_default());
        }
        out
    }

    async fn wait_text(&self, css: &str, needle: &str) -> String {
        eventually(&format!("widget {css} containing {needle:?}"), || async {
            self.texts(css)
                .await
                .into_iter()
                .find(|t| t.contains(needle))
        })
        .await
    }

    async fn click(&self, css: &str) {
        let e = eventually(&format!("widget {css}"), || self.find(css)).await;
        e.click().await.unwrap();
    }

    async fn say(&self, text: &str) {
        let input = eventually("the composer", || {
            self.find("textarea.baton-composer__input")
        })
        .await;
        input.send_keys(text).await.unwrap();
        input.send_keys("\u{E007}").await.unwrap(); // Enter
    }

    async fn status(&self) -> String {
        match self.find(".baton-status").await {
            Some(e) => e.text().await.unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// The agent's side: the console.
struct Agent(Client);

impl Agent {
    async fn find(&self, css: &str) -> Element {
        eventually(&format!("console {css}"), || async {
            self.0.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    async fn wait_text(&self, css: &str, needle: &str) {
        eventually(&format!("console {css} containing {needle:?}"), || async {
            for e in self.0.find_all(Locator::Css(css)).await.unwrap_or_default() {
                if e.text().await.unwrap_or_default().contains(needle) {
                    return Some(());
                }
            }
            None
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_is_handed_from_the_bot_to_an_agent_and_back() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = baton_server::Config::defaults();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.database = data.path().join("baton.sqlite3");
    cfg.widget_dir = dir_from_env("BATON_WIDGET_DIR", "dist");
    cfg.console_dir = dir_from_env("BATON_CONSOLE_DIR", "crates/console/dist");
    let server = baton_server::spawn(cfg).await.unwrap();
    let base = server.url();

    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver).await);
    let visitor = Visitor(browser(&driver).await);

    // The agent logs in to the console (the demo account).
    agent.0.goto(&format!("{base}/console/")).await.unwrap();
    agent
        .find("#email")
        .await
        .send_keys("agent@baton.example")
        .await
        .unwrap();
    agent
        .find("#password")
        .await
        .send_keys("baton-demo")
        .await
        .unwrap();
    agent
        .find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    agent.wait_text(".console-header", "Online").await;

    // The visitor opens the demo host page: the launcher is there, styled by the widget's
    // stylesheet under the page's strict CSP.
    visitor.0.goto(&format!("{base}/demo/")).await.unwrap();
    let launcher = eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    assert_eq!(
        launcher.css_value("position").await.unwrap(),
        "fixed",
        "baton.css applies inside the shadow root"
    );
    launcher.click().await.unwrap();
    eventually("the chat panel", || visitor.find("[role=dialog]")).await;

    // 1. Visitor message → bot reply.
    visitor.say("hello").await;
    visitor
        .wait_text(".baton-message--bot .baton-message__text", "demo assistant")
        .await;

    // 2. Request live agent from the overflow menu → the waiting message.
    visitor.click("button[aria-label='More options']").await;
    visitor.click("[role=menuitem]").await;
    eventually("the waiting message", || async {
        let s = visitor.status().await;
        s.contains("Please wait for a couple of minutes while a live agent connects")
            .then_some(())
    })
    .await;

    // 3. The agent sees the waiting conversation with its bot transcript, and accepts.
    agent
        .find(".console-list__item")
        .await
        .click()
        .await
        .unwrap();
    agent.wait_text(".console-message--visitor", "hello").await;
    agent
        .wait_text(".console-message--bot", "demo assistant")
        .await;
    agent.find(".console-accept").await.click().await.unwrap();
    agent.wait_text(".console-state", "With Dana").await;
    eventually("the visitor told the agent joined", || async {
        visitor
            .status()
            .await
            .contains("You are chatting with Dana")
            .then_some(())
    })
    .await;

    // 4. The agent's reply appears in the widget, as text.
    let reply = agent.find("#reply").await;
    reply
        .send_keys("Hi, I'm Dana. <b>How</b> can I help?")
        .await
        .unwrap();
    reply.send_keys("\u{E007}").await.unwrap();
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hi, I'm Dana. <b>How</b> can I help?",
        )
        .await;
    assert!(
        visitor.find(".baton-message--agent b").await.is_none(),
        "agent text is never HTML"
    );
    std::fs::create_dir_all(repo().join("target/e2e")).unwrap();
    std::fs::write(
        repo().join("target/e2e/widget-with-agent.png"),
        visitor.0.screenshot().await.unwrap(),
    )
    .unwrap();
    std::fs::write(
        repo().join("target/e2e/console.png"),
        agent.0.screenshot().await.unwrap(),
    )
    .unwrap();

    // The visitor answers over the agent socket.
    visitor.say("My order 1234 is late").await;
    agent
        .wait_text(".console-message--visitor", "My order 1234 is late")
        .await;

    // A reload loses nothing: the widget reconnects, replays the conversation and is still
    // with Dana.
    visitor.0.refresh().await.unwrap();
    visitor
        .click(".baton-launcher:not([data-placeholder])")
        .await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hi, I'm Dana.",
        )
        .await;
    visitor
        .wait_text(".baton-message--bot .baton-message__text", "demo assistant")
        .await;
    eventually("the restored agent state", || async {
        visitor
            .status()
            .await
            .contains("You are chatting with Dana")
            .then_some(())
    })
    .await;
    visitor.say("Are you still there?").await;
    agent
        .wait_text(".console-message--visitor", "Are you still there?")
        .await;

    // 5. The agent ends the chat → the widget says so and the bot answers again.
    agent.find(".console-end").await.click().await.unwrap();
    visitor
        .wait_text(".baton-message--system", "Dana ended the chat")
        .await;
    let bot_answers = visitor
        .texts(".baton-message--bot .baton-message__text")
        .await
        .len();
    visitor.say("hello again").await;
    eventually("another bot answer", || async {
        (visitor
            .texts(".baton-message--bot .baton-message__text")
            .await
            .len()
            > bot_answers)
            .then_some(())
    })
    .await;
    let bot = visitor
        .texts(".baton-message--bot .baton-message__text")
        .await;
    assert!(bot.last().unwrap().contains("demo assistant"), "{bot:?}");

    agent.0.close().await.unwrap();
    visitor.0.close().await.unwrap();
    drop(driver);
    server.stop().await.unwrap();
}
