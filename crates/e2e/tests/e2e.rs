//! Browser end-to-end tests: the real server (in-process, on 127.0.0.1:0, with a real SQLite
//! file), the built widget and console, and real headless Chromium sessions driven over
//! WebDriver: the visitor on a site owner's page, the agent in the console.
//!
//! The visitor's page is served from another origin than Baton (`http://localhost:P`
//! against Baton's `http://127.0.0.1:Q`), embeds the widget with the README's one tag, and
//! is served under a strict Content-Security-Policy; the test fails on any CSP violation.
//! One test drives it with a mouse on a desktop-sized window, the other by keyboard alone
//! on a phone-sized touch screen (then taps Send, and looks at the widget in dark mode).
//!
//! Needs the release builds of the widget and console (`cargo xtask test` makes them; paths
//! from BATON_WIDGET_DIR / BATON_CONSOLE_DIR) and chromedriver (CHROMEDRIVER, default
//! /usr/bin/chromedriver).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::response::{Html, IntoResponse};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::{Element, ShadowRoot};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(20);

/// The site owner's own waiting text (configured, so a reload must keep it, not fall back to
/// the widget's default sentence).
const WAITING: &str = "Hang on, someone from the Outdoor Shop team is coming.";
/// The site owner's label for the send button: the widget shows the server's texts only.
const SEND: &str = "Send it";

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_chromedriver() -> Driver {
    let port = free_port();
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

/// A screen: a desktop window, or a phone (mobile emulation, 375×667).
#[derive(Clone, Copy)]
enum Screen {
    Desktop,
    Phone,
}

async fn browser(driver: &Driver, screen: Screen) -> Client {
    browser_speaking(driver, screen, None).await
}

/// [`browser`], whose visitor's browser prefers the language `lang` (`navigator.language`).
async fn browser_speaking(driver: &Driver, screen: Screen, lang: Option<&str>) -> Client {
    let accept = lang.map(|l| format!("--accept-lang={l}"));
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let mut options = json!({
        "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    });
    if let Some(a) = &accept {
        args.push(a);
    }
    match screen {
        Screen::Desktop => args.push("--window-size=1280,800"),
        Screen::Phone => {
            options["mobileEmulation"] = json!({"deviceMetrics": {"width": 375, "height": 667, "pixelRatio": 2.0, "touch": true}});
        }
    }
    options["args"] = json!(args);
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Runs axe-core (from npm; `cargo xtask test` installs it and names it in BATON_AXE) on
/// `context` in the page, open shadow roots included, and fails on any violation, saying
/// which rule and which elements. axe's own colour checks may add an inline `<style>`, which
/// the host page's CSP reports; what is reported while axe runs is axe's, so it is dropped
/// from the page's violation record (the widget is idle meanwhile).
async fn axe(client: &Client, context: &str, when: &str) {
    let path = std::env::var("BATON_AXE").unwrap_or_else(|_| {
        repo()
            .join(".tools/axe/node_modules/axe-core/axe.min.js")
            .to_string_lossy()
            .into_owned()
    });
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("axe-core at {path}: {e}; `cargo xtask test` installs it"));
    let loaded = client
        .execute(
            &format!("if (!window.axe) {{ {source}\n }} return typeof window.axe;"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(loaded, json!("object"), "axe-core loaded");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             const seen = (window.__violations || []).length; \
             const drop = () => window.__violations && window.__violations.splice(seen); \
             axe.run(arguments[0], {resultTypes: ['violations']}) \
               .then(r => { drop(); return r; }) \
               .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' \
                   + v.nodes.map(n => JSON.stringify(n.target)).join(', ')))) \
               .catch(e => done(['axe failed: ' + e]));",
            vec![json!(context)],
        )
        .await
        .unwrap();
    assert_eq!(found, json!([]), "axe-core violations in {context} {when}");
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

/// Baton, and a site owner's page on another origin that embeds it.
struct Sites {
    server: baton_server::Running,
    _data: tempfile::TempDir,
    /// The host page, `http://localhost:P/`.
    page: String,
    /// Baton's console.
    console: String,
    _host: tokio::task::JoinHandle<()>,
}

/// The host page: exactly the README's tag, plus a script of the page's own that records
/// CSP violations, under a strict policy that names Baton's origin.
fn host_page(baton: &str, lang: &str) -> String {
    let (dir, locale) = match lang {
        "ar" => ("rtl", r#" data-locale="ar""#),
        _ => ("ltr", ""),
    };
    format!(
        r#"<!doctype html>
<html lang="{lang}" dir="{dir}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Outdoor Shop</title>
  <script src="/violations.js"></script>
  <script src="{baton}/widget/baton.js" defer
          data-server="{baton}" data-title="Support"{locale}></script>
</head>
<body>
  <main><h1>Outdoor Shop</h1><p>A site owner's page on its own origin.</p>
  <p><a href="/other">Another page</a></p></main>
</body>
</html>"#
    )
}

const VIOLATIONS_JS: &str = "window.__violations = [];\
document.addEventListener('securitypolicyviolation', function (e) {\
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI);\
});";

async fn sites() -> Sites {
    sites_with("").await
}

/// [`sites`] with more configuration (TOML appended after the e2e texts).
async fn sites_with(extra: &str) -> Sites {
    sites_at(extra, None).await
}

/// A picture the site owner's page serves (`/tent.svg`), for the bot's answers to show.
const TENT_SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' width='120' height='80' viewBox='0 0 120 80'>\
<rect width='120' height='80' fill='#dfe9df'/><path d='M10 72 L60 10 L110 72 Z' fill='#2f6b3a'/></svg>";

/// [`sites_with`], with Baton's clock standing at `now_ms` when given. `{host}` in `extra`
/// stands for the site owner's origin.
async fn sites_at(extra: &str, now_ms: Option<i64>) -> Sites {
    let data = tempfile::tempdir().unwrap();
    let host_port = free_port();
    let host_origin = format!("http://localhost:{host_port}");
    let extra = extra.replace("{host}", &host_origin);
    let mut cfg = baton_server::Config::load_str(
        std::path::Path::new("e2e.toml"),
        // Only the site owner's origin may embed the widget (plus Baton's own pages).
        &format!(
            "[server]\nallowed_origins = [\"{host_origin}\"]\n[texts]\nwaiting = \"{WAITING}\"\nsend = \"{SEND}\"\n{extra}"
        ),
    )
    .unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.database = data
        .path()
        .join("baton.sqlite3")
        .to_string_lossy()
        .into_owned();
    cfg.widget_dir = dir_from_env("BATON_WIDGET_DIR", "dist");
    cfg.console_dir = dir_from_env("BATON_CONSOLE_DIR", "crates/console/dist");
    let deps = baton_server::Deps {
        clock: now_ms.map(|ms| {
            std::sync::Arc::new(baton_server::clock::ManualClock::at(ms))
                as std::sync::Arc<dyn baton_server::clock::Clock>
        }),
        ..baton_server::Deps::default()
    };
    let server = baton_server::spawn_with(cfg, deps).await.unwrap();
    let baton = server.url();
    let ws = baton.replacen("http://", "ws://", 1);
    let csp = format!(
        "default-src 'self'; script-src 'self' {baton} 'wasm-unsafe-eval'; style-src 'self' {baton}; \
         connect-src 'self' {baton} {ws}; img-src 'self' data:; object-src 'none'; base-uri 'none'"
    );
    let page = host_page(&baton, "en");
    // The same shop in Arabic, asking the widget for Arabic with data-locale.
    let page_ar = host_page(&baton, "ar");
    let csp_ar = csp.clone();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || {
                let (csp, page) = (csp.clone(), page.clone());
                async move { ([("content-security-policy", csp)], Html(page)).into_response() }
            }),
        )
        .route(
            "/ar",
            axum::routing::get(move || {
                let (csp, page) = (csp_ar.clone(), page_ar.clone());
                async move { ([("content-security-policy", csp)], Html(page)).into_response() }
            }),
        )
        .route(
            "/tent.svg",
            axum::routing::get(|| async {
                ([("content-type", "image/svg+xml")], TENT_SVG).into_response()
            }),
        )
        .route(
            "/violations.js",
            axum::routing::get(|| async {
                ([("content-type", "text/javascript")], VIOLATIONS_JS).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", host_port))
        .await
        .unwrap();
    let host = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Sites {
        console: format!("{baton}/console/"),
        server,
        _data: data,
        page: format!("{host_origin}/"),
        _host: host,
    }
}

/// The visitor's side: the host page with the widget in its shadow root.
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

    /// Goes to the host page and opens the chat with the launcher, by mouse.
    async fn open(&self, page: &str) {
        self.0.goto(page).await.unwrap();
        self.click(".baton-launcher:not([data-placeholder])").await;
        eventually("the chat panel", || self.find("[role=dialog]")).await;
    }

    /// Opens the chat on `page` by mouse, greets the bot and asks for a person with the
    /// menu's Request live agent: the visitor waits in the queue.
    async fn ask_for_an_agent(&self, page: &str) {
        self.open(page).await;
        self.say("hello").await;
        self.wait_text(".baton-message--bot .baton-message__text", "demo assistant")
            .await;
        self.click("button[aria-label='More options']").await;
        self.click("[role=menuitem]").await;
        self.wait_status(WAITING).await;
    }

    /// The newest bot button titled `title`.
    async fn chip(&self, title: &str) -> Element {
        eventually(&format!("the {title:?} button"), || async {
            let chips = self
                .root()
                .await
                .find_all(Locator::Css(".baton-chip"))
                .await
                .unwrap_or_default();
            for chip in chips.into_iter().rev() {
                if chip.text().await.unwrap_or_default() == title {
                    return Some(chip);
                }
            }
            None
        })
        .await
    }

    async fn say(&self, text: &str) {
        let input = eventually("the composer", || {
            self.find("textarea.baton-composer__input")
        })
        .await;
        input.send_keys(text).await.unwrap();
        input.send_keys(&Key::Enter.to_string()).await.unwrap();
    }

    async fn status(&self) -> String {
        match self.find(".baton-status").await {
            Some(e) => e.text().await.unwrap_or_default(),
            None => String::new(),
        }
    }

    async fn wait_status(&self, needle: &str) {
        eventually(&format!("status containing {needle:?}"), || async {
            self.status().await.contains(needle).then_some(())
        })
        .await
    }

    /// The widget's stored visitor id (on the host page's origin).
    async fn visitor_id(&self) -> String {
        self.0
            .execute("return localStorage.getItem('baton.visitor') || ''", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Presses keys on whatever has the focus, as a person at a keyboard does.
    async fn press(&self, keys: &[char]) {
        let mut seq = KeyActions::new("keyboard".into());
        for &k in keys {
            seq = seq
                .then(KeyAction::Down { value: k })
                .then(KeyAction::Up { value: k });
        }
        self.0.perform_actions(seq).await.unwrap();
    }

    /// The class of the focused element inside the widget, if the focus is there.
    async fn focused(&self) -> String {
        self.0
            .execute(
                "const r = document.querySelector('#baton-widget').shadowRoot; \
                 const e = r && r.activeElement; \
                 return e ? (e.className || e.tagName) + '|' + (e.getAttribute('aria-label') || '') \
                     + '|' + (e.textContent || '').trim() : '';",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Tabs until the focus is on a widget element whose class or text contains `needle`.
    async fn tab_to(&self, needle: &str, backwards: bool) {
        for _ in 0..30 {
            if self.focused().await.contains(needle) {
                return;
            }
            if backwards {
                self.shift_tab().await;
            } else {
                self.press(&[Key::Tab.into()]).await;
            }
        }
        panic!(
            "the keyboard never reached {needle:?}; focus is on {:?}",
            self.focused().await
        );
    }

    /// Shift+Tab, as a person at a keyboard goes back.
    async fn shift_tab(&self) {
        let seq = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: Key::Shift.into(),
            })
            .then(KeyAction::Down {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Shift.into(),
            });
        self.0.perform_actions(seq).await.unwrap();
    }

    /// Evaluates `script` (a function body) with the widget's shadow root as `r`.
    async fn in_widget(&self, script: &str) -> serde_json::Value {
        self.0
            .execute(
                &format!("const r = document.querySelector('#baton-widget').shadowRoot; {script}"),
                vec![],
            )
            .await
            .unwrap()
    }

    /// Reloads the host page and opens the chat again with the mouse.
    async fn reload_and_open(&self) {
        self.0.refresh().await.unwrap();
        self.click(".baton-launcher:not([data-placeholder])").await;
    }

    /// The transcript as shown: each line's text, oldest first.
    async fn transcript(&self) -> Vec<String> {
        self.texts(".baton-message__text").await
    }

    /// Waits until the transcript is exactly `expected` and stays so (no line shown twice,
    /// none missing, in order).
    async fn wait_transcript(&self, expected: &[String]) {
        for _ in 0..2 {
            eventually("the whole transcript, each line once", || async {
                (self.transcript().await == expected).then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(self.transcript().await, expected);
    }

    /// Waits until the focus is on a widget element whose class, label or text has `needle`.
    async fn wait_focus(&self, needle: &str) {
        eventually(&format!("the focus on {needle:?}"), || async {
            self.focused().await.contains(needle).then_some(())
        })
        .await
    }

    /// Switches the page to `prefers-color-scheme: dark` (Chromium's DevTools protocol).
    async fn prefer_dark(&self) {
        self.0.issue_cmd(Cdp::dark()).await.unwrap();
    }

    async fn no_csp_violations(&self) {
        let v = self
            .0
            .execute("return window.__violations || ['no recorder']", vec![])
            .await
            .unwrap();
        assert_eq!(v, json!([]), "CSP violations on the host page");
    }
}

/// A Chromium DevTools command sent through chromedriver.
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl Cdp {
    /// The browser's time zone (the visitor's).
    fn time_zone(zone: &str) -> Self {
        Self(json!({"cmd": "Emulation.setTimezoneOverride", "params": {"timezoneId": zone}}))
    }

    fn dark() -> Self {
        Self(json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
        }))
    }
}

impl WebDriverCompatibleCommand for Cdp {
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
        (http::Method::POST, Some(self.0.to_string()))
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

    async fn log_in(&self, console: &str) {
        self.log_in_as(console, "agent@baton.example", "baton-demo")
            .await;
    }

    async fn log_in_as(&self, console: &str, email: &str, password: &str) {
        self.0.goto(console).await.unwrap();
        self.find("#email").await;
        axe(&self.0, "body", "at the login").await;
        self.find("#email").await.send_keys(email).await.unwrap();
        self.find("#password")
            .await
            .send_keys(password)
            .await
            .unwrap();
        self.find("button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        self.wait_text(".console-header", "Online").await;
    }

    /// Waits until the console lists the conversation of `visitor_id`.
    async fn wait_waiting(&self, visitor_id: &str) {
        let short: String = visitor_id
            .trim_start_matches("v_")
            .chars()
            .take(8)
            .collect();
        self.wait_text(".console-list__item", &short).await;
    }

    /// Opens the waiting conversation of `visitor` and accepts it.
    async fn accept(&self, visitor_id: &str) {
        self.accept_as(visitor_id, "Dana").await;
    }

    /// Opens the waiting conversation of `visitor` and accepts it as the agent `name`.
    async fn accept_as(&self, visitor_id: &str, name: &str) {
        self.wait_waiting(visitor_id).await;
        self.find(".console-list__item")
            .await
            .click()
            .await
            .unwrap();
        self.find(".console-accept").await.click().await.unwrap();
        self.wait_text(".console-state", &format!("With {name}"))
            .await;
    }

    /// The texts of the conversations the console lists.
    async fn listed(&self) -> Vec<String> {
        let mut out = vec![];
        for e in self
            .0
            .find_all(Locator::Css(".console-list__item"))
            .await
            .unwrap_or_default()
        {
            out.push(e.text().await.unwrap_or_default());
        }
        out
    }

    async fn reply(&self, text: &str) {
        let reply = self.find("#reply").await;
        reply.send_keys(text).await.unwrap();
        reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_by_mouse_a_visitor_reaches_an_agent_and_back() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Desktop).await);
    agent.log_in(&sites.console).await;

    // The site owner's page: the launcher is there, styled by the widget's stylesheet under
    // the page's strict CSP.
    visitor.0.goto(&sites.page).await.unwrap();
    let launcher = eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    assert_eq!(
        launcher.css_value("position").await.unwrap(),
        "fixed",
        "baton.css applies inside the shadow root"
    );
    axe(&visitor.0, "#baton-widget", "with the chat closed").await;
    launcher.click().await.unwrap();
    eventually("the chat panel", || visitor.find("[role=dialog]")).await;
    axe(&visitor.0, "#baton-widget", "with the chat open").await;

    // 1. Visitor message → bot reply, across origins.
    visitor.say("hello").await;
    visitor
        .wait_text(".baton-message--bot .baton-message__text", "demo assistant")
        .await;
    let visitor_id = visitor.visitor_id().await;
    assert!(visitor_id.starts_with("v_"), "the server gave a credential");

    // A reload in the bot phase keeps the conversation: opening the panel shows it again,
    // each line once, in order.
    let shown = visitor.transcript().await;
    visitor.reload_and_open().await;
    visitor
        .wait_text(".baton-message--bot .baton-message__text", "demo assistant")
        .await;
    visitor
        .wait_text(".baton-message--visitor .baton-message__text", "hello")
        .await;
    visitor.wait_transcript(&shown).await;
    assert_eq!(visitor.status().await, "", "with the bot, no status line");

    // 2. Request live agent from the overflow menu → the waiting message.
    visitor.click("button[aria-label='More options']").await;
    eventually("the menu", || visitor.find("[role=menu]:not([hidden])")).await;
    axe(&visitor.0, "#baton-widget", "with the menu open").await;
    visitor.click("[role=menuitem]").await;
    visitor.wait_status(WAITING).await;
    axe(&visitor.0, "#baton-widget", "while queued").await;
    agent.find(".console-list__item").await;
    axe(&agent.0, "body", "with a chat waiting").await;

    // 3. The agent sees the conversation with its bot transcript, and accepts.
    agent.accept(&visitor_id).await;
    agent.wait_text(".console-message--visitor", "hello").await;
    agent
        .wait_text(".console-message--bot", "demo assistant")
        .await;
    visitor.wait_status("You are chatting with Dana").await;

    // 4. The agent's reply appears in the widget, as text.
    agent.reply("Hi, I'm Dana. <b>How</b> can I help?").await;
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
    axe(&visitor.0, "#baton-widget", "with an agent").await;
    axe(&agent.0, "body", "in a chat").await;
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
    visitor.reload_and_open().await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hi, I'm Dana.",
        )
        .await;
    visitor
        .wait_text(".baton-message--bot .baton-message__text", "demo assistant")
        .await;
    visitor.wait_status("You are chatting with Dana").await;
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

    // A reload after the agent chat shows all of it, each line once, back with the bot (the
    // visitor has written since, so the "ended" sentence is no longer news).
    let shown = visitor.transcript().await;
    visitor.reload_and_open().await;
    visitor
        .wait_text(".baton-message--system", "Dana ended the chat")
        .await;
    visitor.wait_transcript(&shown).await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hi, I'm Dana.",
        )
        .await;
    assert_eq!(visitor.status().await, "");
    assert_eq!(visitor.texts(".baton-panel__subtitle").await, ["Assistant"]);
    visitor.no_csp_violations().await;

    agent.0.close().await.unwrap();
    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_by_keyboard_on_a_phone_a_visitor_gets_in_the_queue() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);

    visitor.0.goto(&sites.page).await.unwrap();
    eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    let width = visitor
        .0
        .execute("return window.innerWidth", vec![])
        .await
        .unwrap();
    assert_eq!(width, json!(375), "a phone-sized viewport");

    // Tab from the page to the launcher and open the chat with Enter: the focus lands in the
    // message box.
    visitor.tab_to("baton-launcher", false).await;
    visitor.press(&[Key::Enter.into()]).await;
    eventually("the chat panel", || visitor.find("[role=dialog]")).await;
    visitor.wait_focus("baton-composer__input").await;

    // On a phone the panel fills the screen, the launcher steps aside so nothing covers Send,
    // and the text box is 16 px (no zoom on focus).
    let layout = visitor
        .in_widget(
            "const send = r.querySelector('.baton-composer__send').getBoundingClientRect(); \
             const top = r.elementFromPoint(send.x + send.width / 2, send.y + send.height / 2); \
             const panel = r.querySelector('.baton-panel').getBoundingClientRect(); \
             return [top && top.className, getComputedStyle(r.querySelector('.baton-composer__input')).fontSize, \
                     panel.width, panel.bottom <= window.innerHeight, \
                     getComputedStyle(r.querySelector('.baton-launcher')).display, \
                     r.querySelector('.baton-composer__send').textContent];",
        )
        .await;
    assert_eq!(
        layout,
        json!(["baton-composer__send", "16px", 375, true, "none", SEND]),
        "Send is on top (with the configured label), 16 px input, full-width panel within the \
         screen, launcher hidden"
    );

    // Type, Enter sends.
    for c in "hello".chars() {
        visitor.press(&[c]).await;
    }
    visitor.press(&[Key::Enter.into()]).await;
    visitor
        .wait_text(".baton-message--bot .baton-message__text", "demo assistant")
        .await;

    // The overflow menu by keyboard: ArrowDown opens it on "Request live agent", Enter picks it.
    visitor.tab_to("More options", true).await;
    let more = visitor.focused().await;
    assert!(more.contains("baton-icon-button"), "{more}");
    visitor.press(&[Key::Down.into()]).await;
    visitor.wait_focus("Request live agent").await;
    visitor.press(&[Key::Enter.into()]).await;
    // Nobody is logged in to the console yet.
    visitor
        .wait_status("There are no agents available at this time")
        .await;

    // While queued the menu opens on "Cancel request" (the disabled item is skipped), and
    // Escape closes it with the focus back on its button.
    visitor.wait_focus("More options").await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor.wait_focus("Cancel request").await;
    visitor.press(&[Key::Escape.into()]).await;
    visitor.wait_focus("More options").await;
    assert!(visitor.find("[role=menu]:not([hidden])").await.is_none());
    assert!(visitor.find("[role=dialog]").await.is_some());

    // An agent logs in: the waiting widget changes what it says, without a reload.
    agent.log_in(&sites.console).await;
    visitor.wait_status(WAITING).await;

    // A reload while queued: reopened by keyboard, the widget shows the conversation, the
    // queue and the site owner's own waiting text.
    let shown = visitor.transcript().await;
    visitor.0.refresh().await.unwrap();
    eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    visitor.tab_to("baton-launcher", false).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor.wait_focus("baton-composer__input").await;
    visitor.wait_status(WAITING).await;
    visitor.wait_transcript(&shown).await;
    assert_eq!(
        visitor.texts(".baton-panel__subtitle").await,
        ["Waiting for an agent"]
    );

    // The agent sees it, across origins and replicas of nothing: the same server.
    let visitor_id = visitor.visitor_id().await;
    agent.accept(&visitor_id).await;
    visitor.wait_status("You are chatting with Dana").await;
    agent.reply("Hello from Dana").await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hello from Dana",
        )
        .await;

    // A tap on Send sends (touch emulation; nothing covers the button).
    let input = visitor
        .find("textarea.baton-composer__input")
        .await
        .unwrap();
    input.send_keys("Tapped send").await.unwrap();
    visitor.click(".baton-composer__send").await;
    agent
        .wait_text(".console-message--visitor", "Tapped send")
        .await;
    std::fs::create_dir_all(repo().join("target/e2e")).unwrap();
    std::fs::write(
        repo().join("target/e2e/widget-phone.png"),
        visitor.0.screenshot().await.unwrap(),
    )
    .unwrap();

    // Dark mode follows the system setting.
    visitor.prefer_dark().await;
    let surface = visitor
        .in_widget("return getComputedStyle(r.querySelector('.baton-panel')).backgroundColor;")
        .await;
    assert_eq!(surface, json!("rgb(22, 27, 34)"), "the dark surface");
    axe(&visitor.0, "#baton-widget", "in dark mode with an agent").await;
    std::fs::write(
        repo().join("target/e2e/widget-dark.png"),
        visitor.0.screenshot().await.unwrap(),
    )
    .unwrap();
    visitor.no_csp_violations().await;

    agent.0.close().await.unwrap();
    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// The built-in bot's contact flow, in German, on a phone on the site owner's page, by
/// keyboard: it asks for a name and an e-mail address (asking again after a bad one), offers
/// its choices as buttons, and hands over to the chosen queue; the agent sees what it
/// collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_on_a_phone_a_flow_collects_slots_for_the_agent() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Phone).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    agent.log_in(&sites.console).await;

    // Tab from the page to the launcher and open the chat with Enter.
    visitor.0.goto(&sites.page).await.unwrap();
    eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    visitor.tab_to("baton-launcher", false).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor.wait_focus("baton-composer__input").await;

    let bot = ".baton-message--bot .baton-message__text";
    visitor.say("Bitte rufen Sie mich zurück").await;
    visitor.wait_text(bot, "Wie heißen Sie?").await;
    visitor.say("Ada Lovelace").await;
    visitor.wait_text(bot, "E-Mail-Adresse erreichen").await;
    visitor.say("ada at home").await;
    visitor
        .wait_text(bot, "Das sieht nicht nach einer E-Mail-Adresse aus.")
        .await;
    let asked = visitor.texts(bot).await;
    assert_eq!(
        asked
            .iter()
            .filter(|t| t.contains("E-Mail-Adresse erreichen"))
            .count(),
        2,
        "the question is asked again: {asked:?}"
    );
    visitor.say("ada@example.org").await;
    visitor.wait_text(bot, "Worum geht es?").await;
    // The choices are buttons; tapping one answers with it.
    let chips = eventually("the choice buttons", || async {
        let chips = visitor.texts(".baton-chip").await;
        chips.iter().any(|c| c == "Hilfe").then_some(chips)
    })
    .await;
    assert!(chips.contains(&"Kauf".to_owned()), "{chips:?}");
    // By keyboard: from the message box back to the newest choice, and Enter.
    visitor.tab_to("Hilfe", true).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor
        .wait_text(bot, "Danke! Jemand vom Support übernimmt.")
        .await;
    visitor.wait_status(WAITING).await;
    axe(&visitor.0, "#baton-widget", "after a flow handed over").await;

    // The agent opens the waiting chat: the bot's note, what it collected, and the trigger.
    agent.wait_waiting(&visitor.visitor_id().await).await;
    agent
        .find(".console-list__item")
        .await
        .click()
        .await
        .unwrap();
    agent
        .wait_text(".console-note", "Support request from the contact form.")
        .await;
    agent.wait_text(".console-slots", "Ada Lovelace").await;
    agent.wait_text(".console-slots", "ada@example.org").await;
    agent.wait_text(".console-slots", "support").await;
    agent
        .wait_text(".console-message--system", "policy: flow")
        .await;
    axe(&agent.0, "body", "with the collected slots").await;
    visitor.no_csp_violations().await;

    agent.0.close().await.unwrap();
    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// Two triggers by mouse on the site owner's page: the fallback after two messages the bot
/// does not understand, asked first ("no" returns to the bot, "yes" hands over), and an
/// explicit request for a person in German.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_fallback_asks_first_and_german_asks_for_a_person() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Desktop).await);
    agent.log_in(&sites.console).await;

    let bot = ".baton-message--bot .baton-message__text";
    visitor.open(&sites.page).await;
    visitor.say("xyzzy plugh").await;
    visitor.wait_text(bot, "Sorry, I didn't get that.").await;
    visitor.say("frobnicate the quux").await;
    visitor
        .wait_text(bot, "Do you want to talk to a human agent?")
        .await;
    visitor.chip("No").await.click().await.unwrap();
    visitor.wait_text(bot, "All right, I'm still here.").await;
    assert_eq!(visitor.status().await, "", "still with the bot");
    visitor.say("xyzzy").await;
    visitor.say("plugh").await;
    eventually("the question asked again", || async {
        let asked = visitor.texts(bot).await;
        (asked
            .iter()
            .filter(|t| t.contains("Do you want to talk to a human agent?"))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    visitor.chip("Yes").await.click().await.unwrap();
    visitor
        .wait_text(bot, "Let's send you to an available agent.")
        .await;
    visitor.wait_status(WAITING).await;
    agent.accept(&visitor.visitor_id().await).await;
    agent
        .wait_text(
            ".console-message--system",
            "bot cannot handle: fallback misses",
        )
        .await;
    visitor.wait_status("You are chatting with Dana").await;

    // A second visitor asks for a person in German.
    let other = Visitor(browser(&driver, Screen::Desktop).await);
    other.open(&sites.page).await;
    other
        .say("Kann ich bitte mit einem Mitarbeiter sprechen?")
        .await;
    other
        .wait_text(bot, "Ich schaue, ob jemand aus dem Team übernehmen kann.")
        .await;
    other.wait_status(WAITING).await;
    agent.wait_waiting(&other.visitor_id().await).await;
    other.no_csp_violations().await;
    visitor.no_csp_violations().await;

    other.0.close().await.unwrap();
    agent.0.close().await.unwrap();
    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// A Rasa server of the site owner's, started by the test: "refund" hands over to the
/// `billing` queue, "account" to `support`, with a note for the agent; anything else is echoed.
async fn fake_rasa() -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/webhooks/rest/webhook",
        axum::routing::post(|axum::Json(req): axum::Json<serde_json::Value>| async move {
            let to = req["sender"].clone();
            let text = req["message"].as_str().unwrap_or_default().to_lowercase();
            let handover = |queue: &str, say: &str, note: &str| {
                json!([
                    {"recipient_id": to, "text": say},
                    {"recipient_id": to, "custom": {"type": "handover", "reason": "bot_cannot_handle",
                        "message_to_agent": note, "routing": {"queue": queue}}}
                ])
            };
            axum::Json(if text.contains("refund") {
                handover("billing", "Let me get someone from billing.", "Refund request")
            } else if text.contains("account") {
                handover("support", "Let me get someone from support.", "Account problem")
            } else {
                json!([{"recipient_id": to, "text": format!("echo: {text}")}])
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, task)
}

/// A plain Rasa client (no widget) sends one message to Baton's bot endpoint.
async fn rasa_client(baton: &str, sender: &str, message: &str) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    let req = http::Request::post(format!("{baton}/webhooks/rest/webhook"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"sender": sender, "message": message}).to_string(),
        ))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), 200, "the bot endpoint answers");
}

/// Routing from a Rasa upstream, on a phone on the site owner's page: the upstream's handover
/// payload puts the chat in the `billing` queue; of two agents, only the billing agent sees
/// it and takes it, and the visitor reads the queue's own texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_a_rasa_handover_reaches_only_its_queue() {
    let (rasa, _rasa_task) = fake_rasa().await;
    let sites = sites_with(&format!(
        "[bot]\nupstream = \"{rasa}\"\n\
         [[agents]]\nemail = \"sam@shop.example\"\nname = \"Sam\"\npassword = \"sam-billing\"\nqueues = [\"billing\"]\n\
         [[agents]]\nemail = \"dirk@shop.example\"\nname = \"Dirk\"\npassword = \"dirk-support\"\nqueues = [\"support\"]\n\
         [queues.billing]\nwaiting = \"Billing will be with you shortly.\"\nassigned = \"{{agent}} from billing has your chat.\"\n"
    ))
    .await;
    let driver = start_chromedriver().await;
    let sam = Agent(browser(&driver, Screen::Desktop).await);
    let dirk = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    sam.log_in_as(&sites.console, "sam@shop.example", "sam-billing")
        .await;
    dirk.log_in_as(&sites.console, "dirk@shop.example", "dirk-support")
        .await;

    // The visitor taps the launcher and asks the site's Rasa bot for a refund.
    visitor.open(&sites.page).await;
    visitor.say("I would like a refund please").await;
    visitor
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "Let me get someone from billing.",
        )
        .await;
    visitor
        .wait_status("Billing will be with you shortly.")
        .await;
    let id = visitor.visitor_id().await;
    let short: String = id.trim_start_matches("v_").chars().take(8).collect();

    // Sam (billing) lists it with its queue; Dirk (support) does not: the next chat he hears
    // of is a later one of his own queue.
    sam.wait_waiting(&id).await;
    sam.wait_text(".console-list__queue", "Queue billing").await;
    rasa_client(&sites.server.url(), "v_support2", "my account is locked").await;
    dirk.wait_waiting("v_support2").await;
    let listed = dirk.listed().await;
    assert!(
        listed.iter().all(|t| !t.contains(&short)),
        "Dirk serves support only: {listed:?}"
    );
    assert!(
        sam.listed().await.iter().all(|t| !t.contains("support2")),
        "Sam serves billing only"
    );

    // Sam takes it: the note from the upstream, and the queue's notice for the visitor.
    sam.accept_as(&id, "Sam").await;
    sam.wait_text(".console-note", "Refund request").await;
    sam.wait_text(".console-route", "Queue billing").await;
    visitor
        .wait_text(
            ".baton-message--system .baton-message__text",
            "Sam from billing has your chat.",
        )
        .await;
    visitor.wait_status("You are chatting with Sam").await;
    axe(&visitor.0, "#baton-widget", "with the queue's notice").await;
    axe(&sam.0, "body", "with the routed chat").await;
    visitor.no_csp_violations().await;

    visitor.0.close().await.unwrap();
    dirk.0.close().await.unwrap();
    sam.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// A supervisor switches live chat off while a visitor on the site owner's page waits (on a
/// phone, by mouse): the visitor's widget says so at once and the bot answers again; the
/// console shows the switch to every agent, and it comes back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_a_supervisor_switches_live_chat_off_while_a_visitor_waits() {
    // Appended inside the e2e [texts].
    let sites =
        sites_with("disabled = \"Live chat is off right now; the assistant is still here.\"\n")
            .await;
    let driver = start_chromedriver().await;
    let supervisor = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    supervisor.log_in(&sites.console).await;
    supervisor
        .wait_text(".console-offloading", "Live chat open")
        .await;

    visitor.ask_for_an_agent(&sites.page).await;
    supervisor.wait_waiting(&visitor.visitor_id().await).await;

    // Off: the waiting visitor is told live, and leaves the queue.
    supervisor
        .find(".console-switch")
        .await
        .click()
        .await
        .unwrap();
    supervisor
        .wait_text(".console-offloading", "Live chat switched off")
        .await;
    visitor
        .wait_status("Live chat is off right now; the assistant is still here.")
        .await;
    assert!(
        !visitor.status().await.contains(WAITING),
        "the waiting sentence is gone"
    );
    eventually("the console's queue empties", || async {
        supervisor.listed().await.is_empty().then_some(())
    })
    .await;
    axe(
        &visitor.0,
        "#baton-widget",
        "after live chat was switched off",
    )
    .await;
    axe(&supervisor.0, "body", "with live chat switched off").await;
    // The bot answers again, and the menu says why a person cannot come.
    visitor.say("what does it cost").await;
    visitor
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "free and open source",
        )
        .await;
    visitor.click("button[aria-label='More options']").await;
    let item = eventually("the menu item", || visitor.find("[role=menuitem]")).await;
    assert!(
        item.attr("disabled").await.unwrap().is_some(),
        "Request live agent is not offered while switched off"
    );

    // Nobody can chat: the visitor leaves a message instead, and an agent finds it.
    visitor.press(&[Key::Escape.into()]).await;
    visitor.click(".baton-leave .baton-link").await;
    for (field, value) in [
        ("#baton-leave-name", "Ada Lovelace"),
        ("#baton-leave-email", "ada@example.org"),
        ("#baton-leave-text", "Please call me about the tent order."),
    ] {
        let input = eventually(field, || visitor.find(field)).await;
        input.send_keys(value).await.unwrap();
    }
    axe(&visitor.0, "#baton-widget", "leaving a message").await;
    visitor
        .click(".baton-leave__form button[type=submit]")
        .await;
    visitor
        .wait_text(".baton-leave__sent", "we will answer by e-mail")
        .await;
    supervisor
        .find(".console-messages-button")
        .await
        .click()
        .await
        .unwrap();
    supervisor
        .wait_text(
            ".console-message-left",
            "Please call me about the tent order.",
        )
        .await;
    supervisor
        .wait_text(".console-message-left", "ada@example.org")
        .await;
    axe(&supervisor.0, "body", "with a message left").await;
    supervisor
        .find(".console-done")
        .await
        .click()
        .await
        .unwrap();
    supervisor
        .wait_text(".console-messages", "No open messages.")
        .await;

    // On again.
    supervisor
        .wait_text(".console-switch", "Switch live chat on")
        .await;
    supervisor
        .find(".console-switch")
        .await
        .click()
        .await
        .unwrap();
    supervisor
        .wait_text(".console-offloading", "Live chat open")
        .await;
    visitor.no_csp_violations().await;

    visitor.0.close().await.unwrap();
    supervisor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// Outside opening hours with Baton's clock fixed (Friday 2026-11-20, 20:00 in Berlin), for a
/// visitor in New York, by keyboard: asking the bot for a person says the team is away and
/// when it is back, in the visitor's own zone and to the minute; the menu says the same.
/// Then a visitor in Tokyo whose browser speaks German reads it in German and Tokyo time on a
/// phone, and leaves a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_closed_hours_show_the_next_opening_in_the_visitor_s_zone() {
    // Appended inside the e2e [texts], then the hours.
    let sites = sites_at(
        "closed = \"Our team is away.\"\n\
         [offloading]\nhours = [\"mon-fri 08:00-18:00\"]\ntime_zone = \"Europe/Berlin\"\n",
        Some(1_795_201_200_000),
    )
    .await;
    let driver = start_chromedriver().await;
    let visitor = Visitor(browser(&driver, Screen::Desktop).await);
    visitor
        .0
        .issue_cmd(Cdp::time_zone("America/New_York"))
        .await
        .unwrap();
    visitor.0.goto(&sites.page).await.unwrap();
    eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    visitor.tab_to("baton-launcher", false).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor.wait_focus("baton-composer__input").await;
    visitor.say("I want to talk to a person").await;
    // Monday 08:00 in Berlin is 02:00 in New York.
    let status = eventually("the closed status", || async {
        let s = visitor.status().await;
        s.contains("Our team is away.").then_some(s)
    })
    .await;
    assert!(
        status.contains("We are back Monday, November 23, 2026 at 2:00"),
        "{status}"
    );
    assert!(!status.contains("2:00:00"), "to the minute: {status}");
    axe(&visitor.0, "#baton-widget", "closed, with the next opening").await;
    // The menu's item is disabled and says why, with the same time.
    visitor.tab_to("More options", false).await;
    visitor.press(&[Key::Enter.into()]).await;
    let reason = eventually("the menu's reason", || async {
        let texts = visitor.texts(".baton-menu__reason").await;
        texts.into_iter().find(|t| t.contains("2:00"))
    })
    .await;
    assert!(reason.contains("Monday, November 23"), "{reason}");
    visitor.no_csp_violations().await;

    // A visitor in Tokyo whose browser speaks German (the page names no language), on a
    // phone by touch: the widget speaks German, tells the next opening in Tokyo's time and
    // in German, and offers to leave a message, which is stored.
    let tokyo = Visitor(browser_speaking(&driver, Screen::Phone, Some("de-DE")).await);
    tokyo
        .0
        .issue_cmd(Cdp::time_zone("Asia/Tokyo"))
        .await
        .unwrap();
    tokyo.open(&sites.page).await;
    tokyo.say("Ich möchte mit einem Menschen sprechen").await;
    let status = eventually("the closed status in German", || async {
        let s = tokyo.status().await;
        s.contains("Wir sind wieder da").then_some(s)
    })
    .await;
    // Monday 08:00 in Berlin is 16:00 in Tokyo.
    assert!(
        status.contains("Montag, 23. November 2026 um 16:00"),
        "{status}"
    );
    tokyo.click(".baton-leave:not([hidden]) .baton-link").await;
    for (field, value) in [
        ("#baton-leave-name", "Kenji"),
        ("#baton-leave-email", "kenji@example.jp"),
        ("#baton-leave-text", "Bitte rufen Sie mich am Montag an."),
    ] {
        let input = eventually(field, || tokyo.find(field)).await;
        input.send_keys(value).await.unwrap();
    }
    axe(
        &tokyo.0,
        "#baton-widget",
        "closed, leaving a message in German",
    )
    .await;
    tokyo.click(".baton-leave__form button[type=submit]").await;
    tokyo
        .wait_text(".baton-leave__sent", "Ihre Nachricht ist bei unserem Team")
        .await;
    tokyo.no_csp_violations().await;

    tokyo.0.close().await.unwrap();
    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// A right-to-left site: the shop's page asks for Arabic (`data-locale="ar"`) on a phone; the
/// widget speaks Arabic, mirrors itself (launcher at the left, text from the right), and the
/// server's sentences for a handover come in Arabic too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_an_arabic_page_gets_an_arabic_right_to_left_widget() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    visitor.0.goto(&format!("{}ar", sites.page)).await.unwrap();
    let launcher = eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    let host = visitor
        .0
        .execute(
            "const h = document.querySelector('#baton-widget'); return [h.lang, h.dir];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(host, json!(["ar", "rtl"]));
    assert_eq!(
        launcher.attr("aria-label").await.unwrap().as_deref(),
        Some("فتح الدردشة")
    );
    let left = visitor
        .0
        .execute(
            "return document.querySelector('#baton-widget').shadowRoot\
             .querySelector('.baton-launcher').getBoundingClientRect().left;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        left.as_f64().unwrap() < 100.0,
        "the launcher sits at the left: {left}"
    );
    launcher.click().await.unwrap();
    eventually("the chat panel", || visitor.find("[role=dialog]")).await;
    let direction = visitor
        .0
        .execute(
            "return getComputedStyle(document.querySelector('#baton-widget').shadowRoot\
             .querySelector('.baton-panel')).direction;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(direction, json!("rtl"));
    let send = visitor
        .find(".baton-composer button[type=submit]")
        .await
        .unwrap();
    assert_eq!(send.text().await.unwrap(), "إرسال");
    axe(&visitor.0, "#baton-widget", "in Arabic, right to left").await;

    // Asking for a person: the answer's sentence is the server's, in Arabic.
    visitor.click("button[aria-label='خيارات أخرى']").await;
    visitor.click("[role=menuitem]").await;
    visitor.wait_status("لا يوجد موظفون متاحون حاليًا").await;
    visitor.no_csp_violations().await;

    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// The preview page: a site owner forces each state in its widget by mouse and reads the
/// configured sentence for it, without any agent; the trigger buttons reach the real bot
/// (the fallback's question after two misses, a flow, an explicit request mid-flow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_page_rehearses_every_state_without_agents() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let owner = Visitor(browser(&driver, Screen::Desktop).await);
    let preview = sites.console.replace("/console/", "/preview/");
    owner.0.goto(&preview).await.unwrap();
    eventually("the wasm launcher", || {
        owner.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    axe(&owner.0, "body", "on the preview page").await;
    let press = |state: &'static str| {
        let owner = &owner;
        async move {
            owner
                .0
                .find(Locator::Css(&format!("button[data-preview='{state}']")))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    for (state, sentence) in [
        ("queued", WAITING),
        (
            "queued",
            "You are number 3 in line. Estimated wait: about 4 min.",
        ),
        ("no_agents", "There are no agents available at this time."),
        ("agent", "You are chatting with Dana."),
        ("closed", "Our team is away right now"),
        ("closed", "We are back "),
        ("disabled", "Live chat is switched off at the moment."),
        ("unavailable", "No agent can take your chat right now."),
        ("ended", "The chat with the agent has ended."),
    ] {
        press(state).await;
        owner.wait_status(sentence).await;
    }
    // Closed: the menu says why a person cannot come.
    press("closed").await;
    owner.click("button[aria-label='More options']").await;
    owner
        .wait_text(".baton-menu__reason", "Our team is away")
        .await;
    axe(&owner.0, "#baton-widget", "previewing closed").await;
    // Back with the bot: no status line; a trigger reaches the real bot.
    press("bot").await;
    eventually("no status line", || async {
        owner.status().await.is_empty().then_some(())
    })
    .await;
    // Not understood twice: the fallback asks first, and "No" stays with the bot.
    press("say:xyzzy plugh").await;
    owner
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "Sorry, I didn't get that.",
        )
        .await;
    press("say:xyzzy plugh").await;
    owner
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "Do you want to talk to a human agent?",
        )
        .await;
    owner.chip("No").await.click().await.unwrap();
    owner
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "I'm still here.",
        )
        .await;
    // A flow starts with its first question; asking for a person mid-flow hands over.
    press("say:Please contact me").await;
    owner
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "What's your name?",
        )
        .await;
    press("say:I want to talk to a person").await;
    owner
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "Let me check whether someone from the team can take over.",
        )
        .await;

    owner.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// The menu item's policy, on a phone by keyboard: with `request_item = "after 2 messages"`
/// there is no menu at first (nothing to offer), and after the second message "Request live
/// agent" is there and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_the_menu_item_waits_for_its_policy() {
    let sites = sites_with("[offloading]\nrequest_item = \"after 2 messages\"\n").await;
    let driver = start_chromedriver().await;
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    visitor.0.goto(&sites.page).await.unwrap();
    eventually("the wasm launcher", || {
        visitor.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    visitor.tab_to("baton-launcher", false).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor.wait_focus("baton-composer__input").await;
    let menu_hidden = || async {
        visitor
            .0
            .execute(
                "return document.querySelector('#baton-widget').shadowRoot\
                 .querySelector('.baton-menu').hasAttribute('hidden');",
                vec![],
            )
            .await
            .unwrap()
            == json!(true)
    };
    assert!(menu_hidden().await, "no menu before any message");
    let bot = ".baton-message--bot .baton-message__text";
    visitor.say("hello").await;
    visitor.wait_text(bot, "demo assistant").await;
    assert!(menu_hidden().await, "no menu after one message");
    axe(
        &visitor.0,
        "#baton-widget",
        "before the menu item is offered",
    )
    .await;
    visitor.say("what does it cost").await;
    visitor.wait_text(bot, "free and open source").await;
    eventually("the menu", || async {
        (!menu_hidden().await).then_some(())
    })
    .await;
    // By keyboard: to the menu button, open it, and take the item.
    visitor.tab_to("More options", true).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor.wait_focus("baton-menu__item").await;
    visitor.press(&[Key::Enter.into()]).await;
    // Queued; nobody is logged in to the console in this test.
    visitor
        .wait_status("There are no agents available at this time.")
        .await;
    visitor.no_csp_violations().await;

    visitor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// The bot's pictures and cards on the site owner's page, on a phone by keyboard and on a
/// desktop by mouse: the picture loads (from the host's origin, under its strict CSP), the
/// cards are a labelled list the keyboard reaches, a card's button answers like a typed
/// message; then a supervisor switches live chat off and both widgets, still with the bot,
/// offer to leave a message at once (the status arrives as Server-Sent Events), and take the
/// offer back when live chat is on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_the_bot_shows_pictures_and_cards_and_the_status_follows_live() {
    let sites = sites_with(
        r#"[[bot.intents]]
name = "plans"
examples = ["show me the plans", "plans"]
answer = "Here are our plans."
image = "{host}/tent.svg"
carousel = [
  { title = "Basic", subtitle = "For one site.", buttons = [{ title = "Choose Basic", payload = "/pricing" }] },
  { title = "Pro", subtitle = "For many sites.", image_url = "{host}/tent.svg", buttons = [{ title = "Choose Pro", payload = "/pricing" }] },
]
[[bot.intents]]
name = "pricing"
examples = ["what does it cost", "price"]
answer = "Baton is free and open source."
"#,
    )
    .await;
    let driver = start_chromedriver().await;
    let phone = Visitor(browser(&driver, Screen::Phone).await);
    let desk = Visitor(browser(&driver, Screen::Desktop).await);
    let supervisor = Agent(browser(&driver, Screen::Desktop).await);

    // On a phone, by keyboard.
    phone.0.goto(&sites.page).await.unwrap();
    eventually("the wasm launcher", || {
        phone.find(".baton-launcher:not([data-placeholder])")
    })
    .await;
    phone.tab_to("baton-launcher", false).await;
    phone.press(&[Key::Enter.into()]).await;
    phone.wait_focus("baton-composer__input").await;
    for c in "show me the plans".chars() {
        phone.press(&[c]).await;
    }
    phone.press(&[Key::Enter.into()]).await;
    phone
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "Here are our plans.",
        )
        .await;
    let seen = eventually("the picture and both cards, loaded", || async {
        let v = phone
            .in_widget(
                "const img = r.querySelector('.baton-message--bot img.baton-message__image'); \
                 const cards = r.querySelector('.baton-cards'); \
                 if (!img || !img.complete || !cards) return null; \
                 return [img.naturalWidth, img.getAttribute('alt'), cards.getAttribute('aria-label'), \
                   [...cards.querySelectorAll('.baton-card__title')].map(e => e.textContent), \
                   [...cards.querySelectorAll('img')].length];",
            )
            .await;
        (!v.is_null()).then_some(v)
    })
    .await;
    assert_eq!(
        seen,
        json!([
            120,
            "Image from the assistant",
            "Options from the assistant",
            ["Basic", "Pro"],
            1
        ]),
        "the picture loads with its alt text; the cards are a labelled list with their titles"
    );
    axe(&phone.0, "#baton-widget", "with a picture and cards").await;
    // The keyboard reaches the list, then its first button, which answers like a message.
    phone.tab_to("baton-cards", true).await;
    phone.press(&[Key::Tab.into()]).await;
    assert_eq!(phone.focused().await, "baton-chip||Choose Basic");
    phone.press(&[Key::Enter.into()]).await;
    phone
        .wait_text(
            ".baton-message--visitor .baton-message__text",
            "Choose Basic",
        )
        .await;
    phone
        .wait_text(
            ".baton-message--bot .baton-message__text",
            "free and open source",
        )
        .await;

    // On a desktop, by mouse.
    desk.open(&sites.page).await;
    desk.say("plans").await;
    desk.chip("Choose Pro").await.click().await.unwrap();
    desk.wait_text(
        ".baton-message--bot .baton-message__text",
        "free and open source",
    )
    .await;
    assert!(
        desk.find(".baton-leave:not([hidden])").await.is_none(),
        "nothing to leave while live chat is open"
    );

    // A supervisor switches live chat off: both bot-phase widgets are told at once.
    supervisor.log_in(&sites.console).await;
    supervisor
        .wait_text(".console-offloading", "Live chat open")
        .await;
    supervisor
        .find(".console-switch")
        .await
        .click()
        .await
        .unwrap();
    supervisor
        .wait_text(".console-offloading", "Live chat switched off")
        .await;
    for (who, v) in [("phone", &phone), ("desktop", &desk)] {
        eventually(&format!("the {who} offers to leave a message"), || {
            v.find(".baton-leave:not([hidden]) .baton-link")
        })
        .await;
    }
    axe(&desk.0, "#baton-widget", "offering to leave a message").await;
    // On again: the offer goes, live.
    supervisor
        .find(".console-switch")
        .await
        .click()
        .await
        .unwrap();
    supervisor
        .wait_text(".console-offloading", "Live chat open")
        .await;
    for (who, v) in [("phone", &phone), ("desktop", &desk)] {
        eventually(&format!("the {who} takes the offer back"), || async {
            v.find(".baton-leave:not([hidden])")
                .await
                .is_none()
                .then_some(())
        })
        .await;
    }
    phone.no_csp_violations().await;
    desk.no_csp_violations().await;

    phone.0.close().await.unwrap();
    desk.0.close().await.unwrap();
    supervisor.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// An agent who closes the console mid-chat does not strand the visitor: once the grace
/// period for reloads is over, the visitor (on a phone, on the site owner's page) reads that
/// Dana left and waits again, and Sam picks the chat up with the whole transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_an_agent_who_leaves_hands_the_chat_to_the_next_one() {
    let sites = sites_with(
        "[offloading]\nconsole_grace = \"1s\"\n\
         [[agents]]\nemail = \"dana@shop.example\"\nname = \"Dana\"\npassword = \"dana-pass\"\n\
         [[agents]]\nemail = \"sam@shop.example\"\nname = \"Sam\"\npassword = \"sam-pass\"\n",
    )
    .await;
    let driver = start_chromedriver().await;
    let dana = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    dana.log_in_as(&sites.console, "dana@shop.example", "dana-pass")
        .await;
    visitor.ask_for_an_agent(&sites.page).await;
    let id = visitor.visitor_id().await;
    dana.accept_as(&id, "Dana").await;
    dana.reply("Hi, I'm Dana.").await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hi, I'm Dana.",
        )
        .await;
    visitor.say("my tent pole broke").await;
    dana.wait_text(".console-message__text", "my tent pole broke")
        .await;

    // Dana's console goes away (her browser closes).
    dana.0.close().await.unwrap();
    visitor
        .wait_text(
            ".baton-message--system .baton-message__text",
            "Dana has left the chat.",
        )
        .await;
    eventually("no longer chatting with Dana", || async {
        (!visitor.status().await.contains("Dana")).then_some(())
    })
    .await;
    axe(&visitor.0, "#baton-widget", "after the agent left").await;

    // Sam finds it waiting and takes it, with everything said so far.
    let sam = Agent(browser(&driver, Screen::Desktop).await);
    sam.log_in_as(&sites.console, "sam@shop.example", "sam-pass")
        .await;
    sam.accept_as(&id, "Sam").await;
    for line in [
        "hello",
        "Hi, I'm Dana.",
        "my tent pole broke",
        "Dana has left the chat.",
    ] {
        sam.wait_text(".console-message__text", line).await;
    }
    visitor.wait_status("Sam").await;
    sam.reply("Sam here, I have the whole story.").await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Sam here, I have the whole story.",
        )
        .await;
    visitor.no_csp_violations().await;

    visitor.0.close().await.unwrap();
    sam.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// Nobody takes the chat in time (`queue_timeout`): the visitor, on a phone on the site
/// owner's page, reads so and leaves a message instead; the agent finds it in the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_a_chat_nobody_takes_in_time_becomes_a_left_message() {
    let sites = sites_with("[offloading]\nqueue_timeout = \"2s\"\n").await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    agent.log_in(&sites.console).await;
    visitor.ask_for_an_agent(&sites.page).await;
    agent.wait_waiting(&visitor.visitor_id().await).await;

    // Nobody accepts: the visitor is told, and offered to leave a message.
    visitor
        .wait_text(
            ".baton-message--system .baton-message__text",
            "nobody could take your chat in time",
        )
        .await;
    eventually("the console's queue empties", || async {
        agent.listed().await.is_empty().then_some(())
    })
    .await;
    visitor
        .click(".baton-leave:not([hidden]) .baton-link")
        .await;
    for (field, value) in [
        ("#baton-leave-name", "Grace Hopper"),
        ("#baton-leave-email", "grace@example.org"),
        (
            "#baton-leave-text",
            "Nobody came; please write to me about my order.",
        ),
    ] {
        let input = eventually(field, || visitor.find(field)).await;
        input.send_keys(value).await.unwrap();
    }
    axe(
        &visitor.0,
        "#baton-widget",
        "leaving a message after the wait",
    )
    .await;
    visitor
        .click(".baton-leave__form button[type=submit]")
        .await;
    visitor
        .wait_text(".baton-leave__sent", "we will answer by e-mail")
        .await;
    agent
        .find(".console-messages-button")
        .await
        .click()
        .await
        .unwrap();
    agent
        .wait_text(
            ".console-message-left",
            "Nobody came; please write to me about my order.",
        )
        .await;
    visitor.no_csp_violations().await;

    visitor.0.close().await.unwrap();
    agent.0.close().await.unwrap();
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// After a reload the console follows every chat the agent has, not just the one on screen:
/// a message in the other chat shows as unread (in its list item and the tab's title), and
/// opening it shows the message, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reload_the_console_follows_every_chat_and_counts_the_unread() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let ada = Visitor(browser(&driver, Screen::Phone).await);
    let bob = Visitor(browser(&driver, Screen::Desktop).await);
    agent.log_in(&sites.console).await;
    let mut ids = vec![];
    for v in [&ada, &bob] {
        v.ask_for_an_agent(&sites.page).await;
        let id = v.visitor_id().await;
        agent.accept(&id).await;
        v.wait_status("Dana").await;
        ids.push(id);
    }
    // The console reloads (its session lives in the tab); nothing is on screen after it.
    agent.0.refresh().await.unwrap();
    agent.wait_text(".console-header", "Online").await;
    agent
        .wait_text(".console-list", &format!("Visitor {}", &ids[0][2..10]))
        .await;
    // Ada writes: her chat, not on screen, counts one unread, and so does the tab.
    ada.say("is anyone there?").await;
    agent.wait_text(".console-unread", "1 unread").await;
    eventually("the tab's title", || async {
        (agent.0.title().await.unwrap_or_default() == "(1) Baton agent console").then_some(())
    })
    .await;
    axe(&agent.0, "body", "with an unread chat").await;
    // Opening it shows the message, once, and clears the count.
    let items = agent
        .0
        .find_all(Locator::Css(".console-list__item"))
        .await
        .unwrap();
    let mut opened = false;
    for item in items {
        if item.text().await.unwrap_or_default().contains("unread") {
            item.click().await.unwrap();
            opened = true;
            break;
        }
    }
    assert!(opened, "the unread chat is listed");
    agent
        .wait_text(".console-message__text", "is anyone there?")
        .await;
    let seen = agent
        .0
        .find_all(Locator::Css(".console-message__text"))
        .await
        .unwrap();
    let mut count = 0;
    for e in seen {
        if e.text().await.unwrap_or_default() == "is anyone there?" {
            count += 1;
        }
    }
    assert_eq!(count, 1, "shown once");
    eventually("no unread left", || async {
        agent
            .0
            .find(Locator::Css(".console-unread"))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    agent.reply("Yes, Dana here.").await;
    ada.wait_text(
        ".baton-message--agent .baton-message__text",
        "Yes, Dana here.",
    )
    .await;

    for c in [ada.0, bob.0, agent.0] {
        c.close().await.unwrap();
    }
    drop(driver);
    sites.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_typing_and_seen_go_both_ways() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    agent.log_in(&sites.console).await;
    visitor.ask_for_an_agent(&sites.page).await;
    agent.accept(&visitor.visitor_id().await).await;
    visitor.wait_status("Dana").await;

    // The visitor types on the phone's keyboard: the agent sees it, before anything is sent.
    let input = eventually("the composer", || {
        visitor.find("textarea.baton-composer__input")
    })
    .await;
    input.send_keys("Where is my").await.unwrap();
    agent
        .wait_text(".console-typing", "The visitor is typing…")
        .await;
    input.send_keys(" order?").await.unwrap();
    input.send_keys(&Key::Enter.to_string()).await.unwrap();
    agent
        .wait_text(".console-message__text", "Where is my order?")
        .await;
    // The agent has it on screen: the visitor reads "Seen" under the message; the agent's
    // indicator is gone with the message.
    visitor.wait_text(".baton-seen:not([hidden])", "Seen").await;
    eventually("the visitor's indicator gone", || async {
        let t = agent
            .0
            .find(Locator::Css(".console-typing"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.is_empty().then_some(())
    })
    .await;

    // The agent types: the visitor reads who, in a polite status region.
    agent
        .find("#reply")
        .await
        .send_keys("Let me")
        .await
        .unwrap();
    visitor
        .wait_text(".baton-typing[role=status]", "Dana is typing…")
        .await;
    axe(&visitor.0, "#baton-widget", "while the agent types").await;
    agent.reply(" check.").await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Let me check.",
        )
        .await;
    eventually("the agent's indicator gone", || async {
        visitor
            .texts(".baton-typing")
            .await
            .first()
            .is_some_and(String::is_empty)
            .then_some(())
    })
    .await;
    // The visitor's panel is open: the agent reads "Seen" under its line.
    agent.wait_text(".console-seen", "Seen").await;
    axe(&agent.0, "body", "with Seen").await;

    // Both marks are stored: after a reload of the console it still says "Seen".
    agent.0.refresh().await.unwrap();
    agent.wait_text(".console-header", "Online").await;
    agent
        .find(".console-list__item")
        .await
        .click()
        .await
        .unwrap();
    agent.wait_text(".console-seen", "Seen").await;
    visitor.no_csp_violations().await;

    for c in [visitor.0, agent.0] {
        c.close().await.unwrap();
    }
    drop(driver);
    sites.server.stop().await.unwrap();
}

/// The `data-notifications` count of a console (how often it called for attention).
async fn notifications(agent: &Agent) -> String {
    agent
        .find(".console")
        .await
        .attr("data-notifications")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_a_chat_moves_from_one_agent_to_another_and_a_supervisor_watches() {
    let sites = sites_with(
        "[[agents]]\nemail = \"dana@shop.example\"\nname = \"Dana\"\npassword = \"dana-pass\"\n\
         [[agents]]\nemail = \"sam@shop.example\"\nname = \"Sam\"\npassword = \"sam-pass\"\n\
         [[agents]]\nemail = \"sue@shop.example\"\nname = \"Sue\"\npassword = \"sue-pass\"\nrole = \"supervisor\"\n",
    )
    .await;
    let driver = start_chromedriver().await;
    let dana = Agent(browser(&driver, Screen::Desktop).await);
    let sam = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Desktop).await);
    dana.log_in_as(&sites.console, "dana@shop.example", "dana-pass")
        .await;
    sam.log_in_as(&sites.console, "sam@shop.example", "sam-pass")
        .await;

    // A new chat calls for Dana's attention once; a reload does not call again.
    assert_eq!(notifications(&dana).await, "0");
    visitor.ask_for_an_agent(&sites.page).await;
    let id = visitor.visitor_id().await;
    dana.wait_waiting(&id).await;
    eventually("one call for attention", || async {
        (notifications(&dana).await == "1").then_some(())
    })
    .await;
    dana.0.refresh().await.unwrap();
    dana.wait_waiting(&id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        notifications(&dana).await,
        "0",
        "a reload does not repeat it"
    );
    dana.wait_text(".console-list__waited", "waiting").await;
    dana.accept_as(&id, "Dana").await;

    // A canned reply: "/hel" offers it, Enter inserts it, Enter sends it.
    let reply = dana.find("#reply").await;
    reply.send_keys("/hel").await.unwrap();
    dana.wait_text("#canned:not([hidden]) [role=option]", "/hello")
        .await;
    assert_eq!(
        reply
            .attr("aria-activedescendant")
            .await
            .unwrap()
            .as_deref(),
        Some("canned-0")
    );
    axe(&dana.0, "body", "with the canned replies open").await;
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    assert_eq!(
        reply.prop("value").await.unwrap().as_deref(),
        Some("Hello, thank you for waiting. How can I help you today?")
    );
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Hello, thank you for waiting.",
        )
        .await;
    visitor.say("I want a refund for my tent").await;
    dana.wait_text(".console-message__text", "refund for my tent")
        .await;

    // Dana hands the chat to Sam with a note; Sam is told, and takes it over.
    dana.find(".console-transfer__toggle")
        .await
        .click()
        .await
        .unwrap();
    dana.find("#transfer-to")
        .await
        .select_by_label("Sam (0 of 5 chats)")
        .await
        .unwrap();
    dana.find("#transfer-note")
        .await
        .send_keys("Refunds are Sam's")
        .await
        .unwrap();
    dana.find(".console-transfer__send")
        .await
        .click()
        .await
        .unwrap();
    dana.wait_text(".console-offered", "Offered to Sam").await;
    sam.wait_text(".console-offer", "Dana offers you the chat")
        .await;
    sam.wait_text(".console-offer__note", "Refunds are Sam's")
        .await;
    eventually("Sam's console calls for attention", || async {
        (notifications(&sam).await != "0").then_some(())
    })
    .await;
    axe(&sam.0, "body", "with a chat offered").await;
    sam.find(".console-offer-accept")
        .await
        .click()
        .await
        .unwrap();
    sam.wait_text(".console-state", "With Sam").await;
    for line in [
        "Hello, thank you for waiting.",
        "I want a refund for my tent",
        "Dana handed the chat to Sam. Note: Refunds are Sam's",
    ] {
        sam.wait_text(".console-message__text", line).await;
    }
    // The visitor reads who took over (and never the note).
    visitor
        .wait_text(
            ".baton-message--system .baton-message__text",
            "Dana has handed your chat to Sam",
        )
        .await;
    visitor.wait_status("You are chatting with Sam.").await;
    assert!(
        !visitor
            .texts(".baton-message__text")
            .await
            .iter()
            .any(|t| t.contains("Refunds are")),
        "the note is for agents"
    );
    dana.wait_text(".console-info", "Sam took over the chat.")
        .await;
    eventually("the chat leaves Dana's list", || async {
        dana.listed().await.is_empty().then_some(())
    })
    .await;
    sam.reply("Sam here, the refund is on its way.").await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Sam here, the refund is on its way.",
        )
        .await;

    // Sue, a supervisor, sees the team and the chat live with Sam, read only.
    let sue = Agent(browser(&driver, Screen::Desktop).await);
    sue.log_in_as(&sites.console, "sue@shop.example", "sue-pass")
        .await;
    sue.find(".console-team-button")
        .await
        .click()
        .await
        .unwrap();
    sue.wait_text(".console-team__agent--online", "Sam").await;
    sue.wait_text(".console-team__agents", "1 of 5").await;
    axe(&sue.0, "body", "in the team view").await;
    // Sam goes away: Sue sees it.
    sam.find(".console-presence__select")
        .await
        .select_by_value("away")
        .await
        .unwrap();
    sue.wait_text(".console-team__agent--away", "Sam").await;
    sue.find(".console-live-chat").await.click().await.unwrap();
    sue.wait_text(".console-readonly", "Read only: Sam has this chat.")
        .await;
    sue.wait_text(".console-message__text", "the refund is on its way")
        .await;
    assert!(
        sue.0.find(Locator::Css("#reply")).await.is_err(),
        "no reply box for a supervisor reading"
    );
    visitor.no_csp_violations().await;

    for c in [visitor.0, dana.0, sam.0, sue.0] {
        c.close().await.unwrap();
    }
    drop(driver);
    sites.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_another_origin_a_phone_visitor_rates_the_chat_and_keeps_the_transcript() {
    let sites = sites().await;
    let driver = start_chromedriver().await;
    let agent = Agent(browser(&driver, Screen::Desktop).await);
    let visitor = Visitor(browser(&driver, Screen::Phone).await);
    agent.log_in(&sites.console).await;
    visitor.ask_for_an_agent(&sites.page).await;
    agent.accept(&visitor.visitor_id().await).await;
    agent.reply("Your tent ships today.").await;
    visitor
        .wait_text(
            ".baton-message--agent .baton-message__text",
            "Your tent ships today.",
        )
        .await;
    agent.find(".console-end").await.click().await.unwrap();
    visitor
        .wait_text(".baton-rate legend", "How was your chat with Dana?")
        .await;
    axe(&visitor.0, "#baton-widget", "with the rating").await;

    // By keyboard alone: back from the message box to the stars, four of them with the
    // arrow keys, a comment, Send.
    visitor.tab_to("baton-composer__input", false).await;
    let on_star = || async {
        visitor
            .in_widget("const e = r.activeElement; return e && e.name === 'baton-stars' ? Number(e.value) : 0;")
            .await
            .as_u64()
            .unwrap_or(0)
    };
    let mut star = 0;
    for _ in 0..12 {
        star = on_star().await;
        if star > 0 {
            break;
        }
        visitor.shift_tab().await;
    }
    assert!(star > 0, "the keyboard reaches the stars");
    visitor.press(&[' ']).await;
    let arrow = if star > 4 { Key::Left } else { Key::Right };
    for _ in 0..star.abs_diff(4) {
        visitor.press(&[arrow.into()]).await;
    }
    assert_eq!(
        visitor
            .in_widget("return r.querySelector('input[name=baton-stars]:checked').value;")
            .await,
        json!("4")
    );
    visitor.press(&[Key::Tab.into()]).await;
    for ch in "Quick and kind".chars() {
        visitor.press(&[ch]).await;
    }
    visitor.press(&[Key::Tab.into()]).await;
    visitor.press(&[Key::Enter.into()]).await;
    visitor
        .wait_text(".baton-rate__thanks", "Thank you for your feedback.")
        .await;

    // The transcript as a text file, with every line and who wrote it.
    visitor.click(".baton-download").await;
    let href = visitor
        .in_widget("return r.querySelector('.baton-download').getAttribute('href');")
        .await;
    let href = href.as_str().unwrap_or_default();
    let text = href
        .strip_prefix("data:text/plain;charset=utf-8,")
        .map(|t| {
            url::form_urlencoded::parse(format!("x={}", t.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| panic!("a text file: {href}"));
    for line in [
        "You: hello",
        "Dana: Your tent ships today.",
        "Notice: Dana ended the chat.",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    // A reload does not ask again.
    visitor.reload_and_open().await;
    visitor
        .wait_text(".baton-message__text", "Your tent ships today.")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        visitor
            .in_widget("return r.querySelector('.baton-rate').hasAttribute('hidden');")
            .await,
        json!(true),
        "rated once"
    );

    // The supervisor reads it.
    agent
        .find(".console-ratings-button")
        .await
        .click()
        .await
        .unwrap();
    agent
        .wait_text(
            ".console-ratings__summary",
            "4.0 of 5 on average, from 1 rated chats",
        )
        .await;
    agent.wait_text(".console-rating", "Quick and kind").await;
    axe(&agent.0, "body", "in the ratings").await;
    visitor.no_csp_violations().await;

    for c in [visitor.0, agent.0] {
        c.close().await.unwrap();
    }
    drop(driver);
    sites.server.stop().await.unwrap();
}
