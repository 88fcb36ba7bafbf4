//! `baton-server`: runs Baton's server on its embedded defaults, or on a config file with
//! flags on top.

use std::path::PathBuf;
use std::process::ExitCode;

use baton_server::{Config, Deps};
use clap::Parser;

/// Baton's chat server: bot endpoint, handover, visitor and agent sockets, widget and console.
///
/// Without --config it runs on its embedded defaults (see docs/configuration.md): a SQLite
/// file, the in-process bus, the built-in demo bot and a demo agent.
#[derive(Parser, Debug)]
#[command(name = "baton-server", version)]
struct Args {
    /// A TOML file read on top of the embedded defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (`[server] listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// A SQLite file or a postgres:// URL (`[server] database`).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// "in-process" or a nats:// URL (`[server] bus`).
    #[arg(long, value_name = "URL")]
    bus: Option<String>,
    /// A Rasa-compatible REST bot to forward bot turns to (`[bot] upstream`).
    #[arg(long, value_name = "URL")]
    bot_upstream: Option<String>,
    /// Built widget files (`[server] widget_dir`).
    #[arg(long, value_name = "DIR")]
    widget_dir: Option<PathBuf>,
    /// Built console files (`[server] console_dir`).
    #[arg(long, value_name = "DIR")]
    console_dir: Option<PathBuf>,
}

/// The config file with the flags on top; flags go through the same checks as the file.
fn config(args: Args) -> Result<Config, String> {
    let mut cfg = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::defaults(),
    };
    let mut extra = String::new();
    let quote = |s: &str| toml_string(s);
    if let Some(db) = &args.database {
        extra.push_str(&format!("[server]\ndatabase = {}\n", quote(db)));
    }
    if let Some(bus) = &args.bus {
        if !extra.contains("[server]") {
            extra.push_str("[server]\n");
        }
        extra.push_str(&format!("bus = {}\n", quote(bus)));
    }
    if let Some(up) = &args.bot_upstream {
        extra.push_str(&format!("[bot]\nupstream = {}\n", quote(up)));
    }
    if !extra.is_empty() {
        let flags = Config::load_str(std::path::Path::new("<flags>"), &extra)
            .map_err(|e| e.to_string().replace("<flags>:", "command line:"))?;
        if args.database.is_some() {
            cfg.database = flags.database;
        }
        if args.bus.is_some() {
            cfg.bus = flags.bus;
        }
        if args.bot_upstream.is_some() {
            cfg.bot.upstream = flags.bot.upstream;
        }
    }
    if let Some(listen) = args.listen {
        cfg.listen = listen;
    }
    if let Some(dir) = args.widget_dir {
        cfg.widget_dir = dir;
    }
    if let Some(dir) = args.console_dir {
        cfg.console_dir = dir;
    }
    Ok(cfg)
}

/// A TOML basic string (JSON's string escapes are valid TOML).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();
    let config = match config(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for dir in [&config.widget_dir, &config.console_dir] {
        if !dir.join("index.html").exists() {
            tracing::warn!(
                "{} has no index.html: build it first (cargo xtask demo does)",
                dir.display()
            );
        }
    }
    let defaults = Config::defaults();
    let demo_login = config
        .agents
        .iter()
        .find(|a| {
            defaults
                .agents
                .iter()
                .any(|d| d.email == a.email && d.password == a.password)
        })
        .map(|a| format!("{} / {}", a.email, a.password));
    let database = if config.database.starts_with("postgres") {
        "PostgreSQL".to_owned()
    } else {
        config.database.clone()
    };
    let (addr, svc, task) =
        match baton_server::spawn_until(config, Deps::default(), shutdown_signal()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("baton-server: {e}");
                return ExitCode::FAILURE;
            }
        };
    println!(
        "Baton is running (database: {database}, bus: {}, bot: {}, replica: {})",
        svc.bus.kind(),
        svc.bot.kind(),
        svc.replica
    );
    println!("  demo page:     http://{addr}/demo/");
    println!("  agent console: http://{addr}/console/");
    println!("  preview:       http://{addr}/preview/  (rehearse every state)");
    if let Some(login) = demo_login {
        println!("  demo agent:    {login}");
    }
    drop(svc);
    match task.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("baton-server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("baton-server: {e}");
            ExitCode::FAILURE
        }
    }
}
