//! The bus across replicas, on a NATS server.
//!
//! Each replica keeps one NATS subscription (`<prefix>.>`) and fans what arrives out to its
//! local receivers by subject; sockets subscribe locally, per topic. A notice is delivered
//! to local receivers at once and published to NATS for the other replicas (the connection
//! is `no_echo`, so a replica never gets its own notices twice). When the NATS connection
//! comes back after a drop, every local receiver resyncs from the store, since notices sent
//! meanwhile are lost.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::{Bus, BusFut, Fanout, Notice, Subscription, Topic};

/// Notices between replicas over NATS.
pub struct NatsBus {
    client: async_nats::Client,
    prefix: String,
    fanout: Arc<Fanout>,
    pump: tokio::task::JoinHandle<()>,
}

impl NatsBus {
    /// Connects to `url`; subjects are `<prefix>.conv.…`, `<prefix>.queue.…` and so on, so
    /// several Baton installations can share one NATS server.
    pub async fn connect(url: &str, prefix: &str, replica: &str) -> Result<Self, String> {
        let fanout = Arc::new(Fanout::default());
        let on_event = fanout.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("baton-server {replica}"))
            .no_echo()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let fanout = on_event.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("bus: connected to NATS; resyncing sockets");
                            fanout.resync_all();
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("bus: lost the NATS connection; reconnecting")
                        }
                        other => tracing::debug!("bus: {other}"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))?;
        let prefix = prefix.trim_end_matches('.').to_owned();
        let mut sub = client
            .subscribe(format!("{prefix}.>"))
            .await
            .map_err(|e| format!("cannot subscribe on NATS: {e}"))?;
        client
            .flush()
            .await
            .map_err(|e| format!("NATS did not answer: {e}"))?;
        // A flush only puts the SUB on the wire; the server may still take another
        // connection's PUB first. A request nobody answers comes back ("no responders") only
        // after the server has read everything before it on this connection, so once it
        // does, the subscription is in place for every publisher.
        let probe = format!("_baton_ready.{}", crate::auth::random_hex(8));
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(probe, Default::default()),
        )
        .await;
        let strip = format!("{prefix}.");
        let local = fanout.clone();
        let pump = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(subject) = msg.subject.as_str().strip_prefix(&strip) else {
                    continue;
                };
                match serde_json::from_slice::<Notice>(&msg.payload) {
                    Ok(notice) => local.deliver(subject, notice),
                    Err(e) => tracing::warn!("bus: unreadable notice on {}: {e}", msg.subject),
                }
            }
        });
        Ok(Self {
            client,
            prefix,
            fanout,
            pump,
        })
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl Bus for NatsBus {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn publish(&self, topic: Topic, notice: Notice) -> BusFut<'_> {
        let subject = topic.subject();
        self.fanout.deliver(&subject, notice.clone());
        Box::pin(async move {
            let payload = serde_json::to_vec(&notice).expect("notices serialise");
            if let Err(e) = self
                .client
                .publish(format!("{}.{subject}", self.prefix), payload.into())
                .await
            {
                tracing::warn!("bus: cannot publish {subject}: {e}");
            }
        })
    }

    fn subscribe(&self, topic: &Topic) -> Subscription {
        self.fanout.subscribe(topic.subject())
    }
}
