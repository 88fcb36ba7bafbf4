//! `baton-server agent add | list | remove | passwd` against the configured database, and a
//! server that keeps the accounts it did not create.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::harness::start_in;

/// Runs `baton-server --database <db> agent …` with `stdin`; (success, stdout + stderr).
fn agent(db: &str, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-server"))
        .args(["--database", db, "agent"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn agents_are_added_listed_changed_and_removed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir
        .path()
        .join("baton.sqlite3")
        .to_string_lossy()
        .into_owned();
    let (ok, out) = agent(
        &db,
        &[
            "add",
            "--email",
            "sam@x",
            "--name",
            "Sam",
            "--queues",
            "sales,billing",
            "--skills",
            "german",
            "--max-chats",
            "3",
        ],
        "sam-secret-1\n",
    );
    assert!(ok, "{out}");
    // Mistakes are refused with the reason.
    let (ok, out) = agent(
        &db,
        &["add", "--email", "sam@x", "--name", "Sam"],
        "sam-secret-1\n",
    );
    assert!(!ok && out.contains("exists already"), "{out}");
    let (ok, out) = agent(
        &db,
        &["add", "--email", "kim@x", "--name", "Kim"],
        "short\n",
    );
    assert!(!ok && out.contains("at least 8 characters"), "{out}");
    let (ok, out) = agent(
        &db,
        &["add", "--email", "kim@x", "--name", "Kim", "--role", "boss"],
        "kim-secret-1\n",
    );
    assert!(!ok && out.contains("agent or supervisor"), "{out}");
    let (ok, out) = agent(
        &db,
        &[
            "add",
            "--email",
            "kim@x",
            "--name",
            "Kim",
            "--max-chats",
            "500",
        ],
        "kim-secret-1\n",
    );
    assert!(!ok && out.contains("500"), "{out}");

    // A server on that database keeps Sam (its config names only the demo agent), and Sam
    // serves what the command line said.
    let s = start_in(dir, "").await;
    let login = s.login_as("sam@x", "sam-secret-1").await;
    let (_, out) = agent(&db, &["list"], "");
    assert!(
        out.contains("sam@x\tSam\tagent\tsales,billing\tgerman\t3\tcli"),
        "{out}"
    );
    assert!(
        out.contains("agent@baton.example\tDana\tsupervisor\tevery queue\t-\t-\tconfig"),
        "{out}"
    );
    // The configuration's own accounts are not the command line's to change.
    let (ok, out) = agent(&db, &["remove", "--email", "agent@baton.example"], "");
    assert!(
        !ok && out.contains("managed by the configuration file"),
        "{out}"
    );

    // A new password ends the old sessions and the old password.
    let (ok, out) = agent(&db, &["passwd", "--email", "sam@x"], "sam-secret-2\n");
    assert!(ok, "{out}");
    assert!(
        s.service()
            .agent_by_token(&login.token)
            .await
            .unwrap()
            .is_none()
    );
    let (code, _) = s
        .post(
            "/api/v1/agent/login",
            &json!({"email": "sam@x", "password": "sam-secret-1"}),
        )
        .await;
    assert_eq!(code, 401);
    s.login_as("sam@x", "sam-secret-2").await;

    // Removed: no login any more.
    let (ok, out) = agent(&db, &["remove", "--email", "sam@x"], "");
    assert!(ok, "{out}");
    let (code, _) = s
        .post(
            "/api/v1/agent/login",
            &json!({"email": "sam@x", "password": "sam-secret-2"}),
        )
        .await;
    assert_eq!(code, 401);
    let (ok, out) = agent(&db, &["remove", "--email", "sam@x"], "");
    assert!(!ok && out.contains("no agent"), "{out}");
}
