//! PostgreSQL and NATS for the tests.
//!
//! `cargo xtask test` uses the servers on their standard local ports when they answer
//! (`postgres://postgres@127.0.0.1:5432`, `nats://127.0.0.1:4222`, or what
//! `BATON_TEST_POSTGRES` / `BATON_TEST_NATS` name). When they do not, it starts throwaway ones
//! of its own on other ports (installing Debian's `postgresql` and `nats-server` first when
//! run as root), and stops them afterwards. When it cannot, it stops and prints the exact
//! command to run. It never lets those tests skip.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, is_root, run};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";
const OWN_PG_PORT: u16 = 55432;
const OWN_NATS_PORT: u16 = 54222;

/// The services the tests use; what xtask started is stopped on drop.
pub struct Services {
    /// `BATON_TEST_POSTGRES` and `BATON_TEST_NATS` for the test processes.
    pub env: Vec<(&'static str, String)>,
    own_pg: Option<(PathBuf, PathBuf)>,
    own_nats: Option<Child>,
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some((pg_ctl, dir)) = self.own_pg.take() {
            let _ = as_postgres(&pg_ctl)
                .args(["-D", &dir.to_string_lossy(), "-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .status();
        }
        if let Some(mut nats) = self.own_nats.take() {
            let _ = nats.kill();
            let _ = nats.wait();
        }
    }
}

fn answers(host_port: &str) -> bool {
    host_port.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
    })
}

/// `host:port` of a `scheme://user@host:port/db` URL.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split('/').next().unwrap_or(rest);
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:{default_port}")
    }
}

fn which(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        if c.contains('/') {
            if Path::new(c).exists() {
                return Some(PathBuf::from(c));
            }
        } else if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            && out.status.success()
        {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    None
}

/// PostgreSQL's server programs (`initdb`, `pg_ctl`): Debian keeps them per version.
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop().or_else(|| which(&[name]))
}

/// A command run as the `postgres` user when we are root (initdb refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Whether `psql` can run a query at `url` (`None` when there is no psql to ask).
fn psql_works(url: &str) -> Option<bool> {
    let psql = which(&["psql"])?;
    Some(
        Command::new(psql)
            .args([url, "-Atqc", "select 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    )
}

fn apt_install(package: &str) -> Result {
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn wait_for(host_port: &str, what: &str) -> Result {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if answers(host_port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} did not come up on {host_port}"))
}

const PG_HELP: &str = "PostgreSQL is needed for the tests. Start the machine's cluster with\n  \
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
    or install it with\n  sudo apt-get install -y postgresql\n\
    or point BATON_TEST_POSTGRES at a server where the user may create databases, then rerun `cargo xtask test`";

const NATS_HELP: &str = "NATS is needed for the tests. Install it with\n  \
    sudo apt-get install -y nats-server\n\
    then rerun `cargo xtask test` (it starts its own), or start one with\n  \
    nats-server -a 127.0.0.1 -p 4222 -js";

fn postgres() -> Result<(String, Option<(PathBuf, PathBuf)>)> {
    if let Ok(url) = std::env::var("BATON_TEST_POSTGRES") {
        return match psql_works(&url) {
            Some(false) => Err(format!(
                "BATON_TEST_POSTGRES={url} does not answer.\n{PG_HELP}"
            )),
            _ => Ok((url, None)),
        };
    }
    let usable = match psql_works(DEFAULT_POSTGRES) {
        Some(ok) => ok,
        None => answers(&host_port(DEFAULT_POSTGRES, 5432)),
    };
    if usable {
        return Ok((DEFAULT_POSTGRES.into(), None));
    }
    println!("no usable PostgreSQL on 127.0.0.1:5432; starting a throwaway cluster");
    if pg_bin("initdb").is_none() {
        if !is_root() {
            return Err(PG_HELP.into());
        }
        apt_install("postgresql")?;
    }
    let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
        return Err(format!("initdb and pg_ctl are not to be found.\n{PG_HELP}"));
    };
    let dir = std::env::temp_dir().join("baton-test-pg");
    if !dir.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if is_root() {
            run(Command::new("chown").args(["postgres:postgres", &dir.to_string_lossy()]))
                .map_err(|e| format!("{e}\n(is there a `postgres` user?)\n{PG_HELP}"))?;
        }
        run(as_postgres(&initdb).args([
            "-D",
            &dir.to_string_lossy(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]))?;
    }
    let opts = format!(
        "-p {OWN_PG_PORT} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.display()
    );
    run(as_postgres(&pg_ctl).args([
        "-D",
        &dir.to_string_lossy(),
        "-o",
        &opts,
        "-l",
        &dir.join("log").to_string_lossy(),
        "-w",
        "start",
    ]))?;
    wait_for(&format!("127.0.0.1:{OWN_PG_PORT}"), "PostgreSQL")?;
    Ok((
        format!("postgres://postgres@127.0.0.1:{OWN_PG_PORT}/postgres"),
        Some((pg_ctl, dir)),
    ))
}

fn nats() -> Result<(String, Option<Child>)> {
    let binary = which(&[
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "nats-server",
    ]);
    let binary = match binary {
        Some(b) => b,
        // The bus tests also restart a NATS server of their own, so the program is needed
        // even when a NATS server already runs.
        None if is_root() => {
            apt_install("nats-server")?;
            which(&[
                "/usr/sbin/nats-server",
                "/usr/bin/nats-server",
                "nats-server",
            ])
            .ok_or(NATS_HELP)?
        }
        None => return Err(NATS_HELP.into()),
    };
    if let Ok(url) = std::env::var("BATON_TEST_NATS") {
        return if answers(&host_port(&url, 4222)) {
            Ok((url, None))
        } else {
            Err(format!(
                "BATON_TEST_NATS={url} does not answer.\n{NATS_HELP}"
            ))
        };
    }
    if answers(&host_port(DEFAULT_NATS, 4222)) {
        return Ok((DEFAULT_NATS.into(), None));
    }
    println!("no NATS on 127.0.0.1:4222; starting one on port {OWN_NATS_PORT}");
    let child = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &OWN_NATS_PORT.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}\n{NATS_HELP}", binary.display()))?;
    wait_for(&format!("127.0.0.1:{OWN_NATS_PORT}"), "NATS")?;
    Ok((format!("nats://127.0.0.1:{OWN_NATS_PORT}"), Some(child)))
}

/// Drops the databases earlier test runs left behind (a test that panics cannot drop its
/// own).
fn drop_leftover_databases(url: &str) {
    let Some(psql) = which(&["psql"]) else { return };
    let Ok(out) = Command::new(&psql)
        .args([
            url,
            "-Atqc",
            "select datname from pg_database where datname like 'baton\\_t\\_%'",
        ])
        .output()
    else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let _ = Command::new(&psql)
            .args([
                url,
                "-qc",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Makes PostgreSQL and NATS available, or says how.
pub fn start() -> Result<Services> {
    let (pg, own_pg) = postgres()?;
    let mut services = Services {
        env: vec![],
        own_pg,
        own_nats: None,
    };
    drop_leftover_databases(&pg);
    let (nats, own_nats) = nats()?;
    services.own_nats = own_nats;
    println!("tests use PostgreSQL at {pg} and NATS at {nats}");
    services.env = vec![("BATON_TEST_POSTGRES", pg), ("BATON_TEST_NATS", nats)];
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_come_from_urls() {
        assert_eq!(host_port(DEFAULT_POSTGRES, 5432), "127.0.0.1:5432");
        assert_eq!(host_port("postgres://db/baton", 5432), "db:5432");
        assert_eq!(host_port("nats://u:p@10.0.0.1:4333", 4222), "10.0.0.1:4333");
        assert_eq!(host_port(DEFAULT_NATS, 4222), "127.0.0.1:4222");
    }
}
