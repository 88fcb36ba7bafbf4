//! `baton-server [--config FILE] [--listen ADDR] [--database FILE] [--widget-dir DIR] [--console-dir DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use baton_server::Config;

const USAGE: &str = "usage: baton-server [--config FILE] [--listen ADDR] [--database FILE] [--widget-dir DIR] [--console-dir DIR]

Without --config, Baton runs on its embedded defaults (see docs/configuration.md).";

fn parse_args() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let mut config: Option<PathBuf> = None;
    let mut overrides: Vec<(String, String)> = vec![];
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.into()),
            "--config" | "--listen" | "--database" | "--widget-dir" | "--console-dir" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"))?;
                if arg == "--config" {
                    config = Some(value.into());
                } else {
                    overrides.push((arg, value));
                }
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    let mut cfg = match config {
        Some(path) => Config::load(&path).map_err(|e| e.to_string())?,
        None => Config::defaults(),
    };
    for (flag, value) in overrides {
        match flag.as_str() {
            "--listen" => {
                cfg.listen = value.parse().map_err(|_| {
                    format!("--listen: `{value}` is not an address like 127.0.0.1:8080")
                })?
            }
            "--database" => cfg.database = value.into(),
            "--widget-dir" => cfg.widget_dir = value.into(),
            "--console-dir" => cfg.console_dir = value.into(),
            _ => unreachable!("flags are matched above"),
        }
    }
    Ok(cfg)
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
    let config = match parse_args() {
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
    let demo_login = config
        .agents
        .iter()
        .find(|a| {
            Config::defaults()
                .agents
                .iter()
                .any(|d| d.email == a.email && d.password == a.password)
        })
        .map(|a| format!("{} / {}", a.email, a.password));
    let database = config.database.clone();
    let (addr, _svc, task) = match baton_server::spawn_until(config, shutdown_signal()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Baton is running (database: {})", database.display());
    println!("  demo page:     http://{addr}/demo/");
    println!("  agent console: http://{addr}/console/");
    if let Some(login) = demo_login {
        println!("  demo agent:    {login}");
    }
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
