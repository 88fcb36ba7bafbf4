//! Storage: a real SQLite file that survives a restart, created for its owner only.

use baton_protocol::state::ConversationState;
use baton_protocol::ws::{EventBody, Role};

use crate::harness::{start, start_in};

#[tokio::test]
async fn conversations_survive_a_restart() {
    let s = start("").await;
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    let session = s.handover(&v).await.session.unwrap();
    let dir = s.stop().await;
    assert!(dir.path().join("baton.sqlite3").exists());

    let s = start_in(dir, "").await;
    let conv = s
        .service()
        .store
        .conversation(&session.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(conv.view.state, ConversationState::Queued { .. }));
    assert_eq!(conv.view.head_seq, session.head_seq);
    let events = s
        .service()
        .events_after(&session.conversation_id, 0, 100)
        .await
        .unwrap();
    assert!(
        matches!(&events[0].body, EventBody::Message { role: Role::Visitor, text, .. } if text == "hello")
    );
    // The same credential still opens the same conversation.
    let again = s.handover(&v).await.session.unwrap();
    assert_eq!(again.conversation_id, session.conversation_id);
    // The demo agent can still log in (its hash was kept, not duplicated).
    s.login().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let s = start("").await;
    let v = s.visitor().await;
    s.bot(&v, "hello").await;
    for name in ["baton.sqlite3", "baton.sqlite3-wal", "baton.sqlite3-shm"] {
        let path = s.dir.path().join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
    }
}

#[tokio::test]
async fn the_demo_page_and_widget_files_are_served_under_the_strict_policy() {
    let s = start("").await;
    let r = s.http.get(s.url("/demo/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<script src="/widget/baton.js" defer></script>"#));

    std::fs::create_dir_all(s.dir.path().join("widget")).unwrap();
    std::fs::write(s.dir.path().join("widget/baton.js"), "// loader").unwrap();
    let r = s.http.get(s.url("/widget/baton.js")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.text().await.unwrap(), "// loader");
}
