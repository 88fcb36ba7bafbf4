//! `baton-server`: runs Baton's server on its embedded defaults, or on a config file with
//! flags on top.

use std::path::PathBuf;
use std::process::ExitCode;

use baton_server::store::{AgentRecord, AgentRole, Scope, Store};
use baton_server::{Config, Deps};
use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Agent accounts in the configured database (SQLite or PostgreSQL), besides those the
    /// configuration's [[agents]] list manages. Passwords are read from standard input.
    Agent {
        #[command(subcommand)]
        action: AgentAction,
    },
}

#[derive(Subcommand, Debug)]
enum AgentAction {
    /// Adds an account; its password is the first line of standard input.
    Add {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Name shown to visitors.
        #[arg(long)]
        name: String,
        /// `agent` or `supervisor`.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Queues it serves, comma-separated (default: every queue).
        #[arg(long, value_delimiter = ',')]
        queues: Vec<String>,
        /// Skills it has, comma-separated.
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
        /// Chats it may have at once, 0 (no limit) to 100 (default: `[offloading] max_chats`).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
        max_chats: Option<u32>,
    },
    /// Lists every account.
    List,
    /// Removes an account and ends its sessions.
    Remove {
        /// Login e-mail.
        #[arg(long)]
        email: String,
    },
    /// Sets a new password (the first line of standard input) and ends the sessions.
    Passwd {
        /// Login e-mail.
        #[arg(long)]
        email: String,
    },
}

/// Runs `baton-server agent …`; the line to print, or why not.
async fn agent_command(cfg: &Config, action: AgentAction) -> Result<String, String> {
    let store = baton_server::store::open(&cfg.database, 2)
        .await
        .map_err(|e| format!("cannot open database {}: {e}", cfg.database))?;
    let now = baton_server::clock::system_now_ms();
    let out = agent_action(&store, action, now).await;
    let _ = store.close().await;
    out
}

async fn agent_action(store: &dyn Store, action: AgentAction, now: i64) -> Result<String, String> {
    let db = |e: baton_server::store::StoreError| e.to_string();
    let existing = |email: String| async move {
        let a = store.agent_by_email(email.trim()).await.map_err(db)?;
        let a = a.ok_or_else(|| format!("no agent with the e-mail {}", email.trim()))?;
        let from_config = store
            .agents_managed_by("config")
            .await
            .map_err(db)?
            .iter()
            .any(|c| c.id == a.id);
        if from_config {
            return Err(format!(
                "{} is managed by the configuration file: change its [[agents]] entry instead",
                a.email
            ));
        }
        Ok(a)
    };
    match action {
        AgentAction::Add {
            email,
            name,
            role,
            queues,
            skills,
            max_chats,
        } => {
            let email = email.trim().to_owned();
            if !email.contains('@') || name.trim().is_empty() {
                return Err("give --email (an address) and --name".into());
            }
            let role = match role.as_str() {
                "agent" => AgentRole::Agent,
                "supervisor" => AgentRole::Supervisor,
                other => return Err(format!("--role {other}: use agent or supervisor")),
            };
            let names = |list: Vec<String>, what: &str| -> Result<Vec<String>, String> {
                list.into_iter()
                    .map(|n| {
                        let n = n.trim().to_owned();
                        if n.is_empty() || n.len() > 64 {
                            Err(format!("a {what} name is 1 to 64 bytes, not `{n}`"))
                        } else {
                            Ok(n)
                        }
                    })
                    .collect()
            };
            if store.agent_by_email(&email).await.map_err(db)?.is_some() {
                return Err(format!(
                    "{email} exists already (see `agent passwd`, `agent remove`)"
                ));
            }
            let password_hash = hash(read_password()?).await?;
            let record = AgentRecord {
                id: baton_protocol::ids::AgentId(format!(
                    "a_{}",
                    baton_server::auth::random_hex(6)
                )),
                email: email.clone(),
                name: name.trim().to_owned(),
                password_hash,
                scope: Scope {
                    queues: names(queues, "queue")?,
                    skills: names(skills, "skill")?,
                },
                role,
                max_chats,
            };
            let stored = store.upsert_agent(&record, now).await.map_err(db)?;
            store.set_managed_by(&stored.id, "cli").await.map_err(db)?;
            Ok(format!("added {email} ({})", role.as_str()))
        }
        AgentAction::List => {
            let cli = store.agents_managed_by("cli").await.map_err(db)?;
            let mut out =
                String::from("email\tname\trole\tqueues\tskills\tmax chats\tmanaged by\n");
            for a in store.agents().await.map_err(db)? {
                let list = |l: &[String], none: &str| {
                    if l.is_empty() {
                        none.to_owned()
                    } else {
                        l.join(",")
                    }
                };
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    a.email,
                    a.name,
                    a.role.as_str(),
                    list(&a.scope.queues, "every queue"),
                    list(&a.scope.skills, "-"),
                    a.max_chats.map_or("-".to_owned(), |n| n.to_string()),
                    if cli.iter().any(|c| c.id == a.id) {
                        "cli"
                    } else {
                        "config"
                    },
                ));
            }
            Ok(out.trim_end().to_owned())
        }
        AgentAction::Remove { email } => {
            let a = existing(email).await?;
            store.remove_agent(&a.id, now).await.map_err(db)?;
            Ok(format!(
                "removed {} (its consoles close within 10 seconds)",
                a.email
            ))
        }
        AgentAction::Passwd { email } => {
            let a = existing(email).await?;
            let password_hash = hash(read_password()?).await?;
            store
                .upsert_agent(
                    &AgentRecord {
                        password_hash,
                        ..a.clone()
                    },
                    now,
                )
                .await
                .map_err(db)?;
            store.set_managed_by(&a.id, "cli").await.map_err(db)?;
            store.delete_sessions_of(&a.id).await.map_err(db)?;
            Ok(format!(
                "new password for {}; its sessions ended (consoles close within 10 seconds)",
                a.email
            ))
        }
    }
}

/// The first line of standard input: at least 8 characters.
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().count() < 8 {
        return Err("the password (standard input, one line) needs at least 8 characters".into());
    }
    Ok(password)
}

async fn hash(password: String) -> Result<String, String> {
    baton_server::auth::Passwords::new(1)
        .hash(&password)
        .await
        .map_err(|e| e.to_string())
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
    let mut args = Args::parse();
    let command = args.command.take();
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Agent { action }) = command {
        return match agent_command(&config, action).await {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
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
