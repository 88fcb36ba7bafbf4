//! The bus, on both implementations: the in-process one and NATS (a real server). The same
//! checks run on each; NATS also carries notices between two "replicas" and resyncs its
//! receivers when the server comes back after a restart.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use baton_protocol::ids::{AgentId, ConversationId};
use baton_server::bus::{Bus, InProcessBus, NatsBus, Notice, Subscription, Topic};

use crate::harness::{nats_url, require_nats};

fn events(n: &str, head_seq: u64) -> Notice {
    Notice::Events {
        conversation_id: ConversationId::from(n),
        head_seq,
        events: vec![],
    }
}

async fn next(sub: &mut Subscription) -> Notice {
    tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("a notice in time")
}

async fn nothing(sub: &mut Subscription) {
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.recv())
            .await
            .is_err(),
        "no notice expected"
    );
}

/// Topics are separate, wildcards see every queue, and a notice arrives once.
async fn delivers_by_topic(publisher: &dyn Bus, receiver: &dyn Bus) {
    let c1 = Topic::Conversation(ConversationId::from("c_1"));
    let mut conv = receiver.subscribe(&c1);
    let mut queues = receiver.subscribe(&Topic::AnyQueue);
    let mut agent = receiver.subscribe(&Topic::Agent(AgentId::from("a_1")));
    publisher
        .publish(
            Topic::Conversation(ConversationId::from("c_2")),
            events("c_2", 1),
        )
        .await;
    publisher.publish(c1.clone(), events("c_1", 7)).await;
    assert_eq!(next(&mut conv).await, events("c_1", 7));
    nothing(&mut conv).await;
    let q = Notice::Queue {
        conversation_id: ConversationId::from("c_1"),
        left: false,
        waiting: None,
    };
    publisher
        .publish(Topic::Queue("billing".into()), q.clone())
        .await;
    publisher
        .publish(Topic::Queue("sales team".into()), q.clone())
        .await;
    assert_eq!(next(&mut queues).await, q);
    assert_eq!(next(&mut queues).await, q);
    let revoked = Notice::Revoked {
        agent_id: AgentId::from("a_1"),
        token_hash: None,
    };
    publisher
        .publish(Topic::Agent(AgentId::from("a_1")), revoked.clone())
        .await;
    assert_eq!(next(&mut agent).await, revoked);
    nothing(&mut queues).await;
}

#[tokio::test]
async fn in_process_delivers_by_topic() {
    let bus = InProcessBus::new();
    delivers_by_topic(&bus, &bus).await;
}

async fn nats(prefix: &str, replica: &str) -> NatsBus {
    NatsBus::connect(&nats_url(), prefix, replica)
        .await
        .unwrap()
}

fn prefix() -> String {
    format!(
        "t{}_{}",
        std::process::id(),
        baton_server::auth::random_hex(4)
    )
}

#[tokio::test]
async fn nats_delivers_by_topic_within_a_replica() {
    require_nats().await;
    let bus = nats(&prefix(), "r1").await;
    delivers_by_topic(&bus, &bus).await;
}

#[tokio::test]
async fn nats_delivers_by_topic_across_replicas() {
    require_nats().await;
    let p = prefix();
    let (a, b) = (nats(&p, "ra").await, nats(&p, "rb").await);
    delivers_by_topic(&a, &b).await;
    // And the other way round; a third installation with its own prefix hears nothing.
    let other = nats(&prefix(), "rc").await;
    let mut elsewhere = other.subscribe(&Topic::AnyQueue);
    delivers_by_topic(&b, &a).await;
    nothing(&mut elsewhere).await;
}

/// A NATS server of the test's own, on a free port.
struct OwnNats {
    child: tokio::process::Child,
    port: u16,
}

impl OwnNats {
    async fn start(port: u16) -> Self {
        let bin = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "nats-server",
        ]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap();
        let child = tokio::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({e}); `cargo xtask test` installs it")
            });
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not start on port {port}");
    }
}

#[tokio::test]
async fn after_a_nats_restart_every_receiver_resyncs() {
    require_nats().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = OwnNats::start(port).await;
    let url = format!("nats://127.0.0.1:{}", server.port);
    let bus = Arc::new(NatsBus::connect(&url, "baton", "r1").await.unwrap());
    let mut conv = bus.subscribe(&Topic::Conversation(ConversationId::from("c_1")));
    server.child.kill().await.unwrap();
    // Notices published while NATS is down are lost; the receiver must hear that it missed
    // something once the bus is back.
    let _server = OwnNats::start(port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, conv.recv()).await {
            Ok(Notice::Resync) => break,
            Ok(_) => continue,
            Err(_) => panic!("no resync after NATS came back"),
        }
    }
}
