//! The baseline: a bare axum WebSocket relay with no storage, no bus and no state machine.
//! Visitors send text that goes straight to the agent of their chat; a "handover" is one
//! JSON frame broadcast to every agent. Whatever Baton costs beyond this is Baton's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

#[derive(Default)]
struct Relay {
    agents: Mutex<HashMap<u32, mpsc::UnboundedSender<String>>>,
    owner: Mutex<HashMap<u32, u32>>,
}

#[derive(Deserialize)]
struct VisitorQuery {
    chat: u32,
}

#[derive(Deserialize)]
struct AgentQuery {
    agent: u32,
    #[serde(default)]
    chats: String,
}

async fn visitor(
    State(relay): State<Arc<Relay>>,
    Query(q): Query<VisitorQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |mut socket: WebSocket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Text(text) = msg {
                let owner = relay.owner.lock().unwrap().get(&q.chat).copied();
                if let Some(agent) = owner
                    && let Some(tx) = relay.agents.lock().unwrap().get(&agent)
                {
                    let _ = tx.send(text.to_string());
                }
            }
        }
    })
}

async fn agent(
    State(relay): State<Arc<Relay>>,
    Query(q): Query<AgentQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket: WebSocket| async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        relay.agents.lock().unwrap().insert(q.agent, tx);
        for chat in q.chats.split(',').filter_map(|c| c.parse().ok()) {
            relay.owner.lock().unwrap().insert(chat, q.agent);
        }
        let (mut sink, mut stream) = socket.split();
        let writer = tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        });
        while let Some(Ok(_)) = stream.next().await {}
        writer.abort();
        relay.agents.lock().unwrap().remove(&q.agent);
    })
}

async fn handover(State(relay): State<Arc<Relay>>, Query(q): Query<VisitorQuery>) -> &'static str {
    let frame = format!("{{\"type\":\"waiting\",\"chat\":{}}}", q.chat);
    for tx in relay.agents.lock().unwrap().values() {
        let _ = tx.send(frame.clone());
    }
    "{}"
}

/// Serves the relay on `listen` and prints `listening on ADDR`.
pub async fn serve(listen: std::net::SocketAddr) {
    let relay = Arc::new(Relay::default());
    let app = Router::new()
        .route("/visitor", get(visitor))
        .route("/agent", get(agent))
        .route("/handover", post(handover))
        .route("/status", get(|| async { "{}" }))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
