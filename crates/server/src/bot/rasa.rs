//! A Rasa-compatible REST bot upstream: each bot turn is forwarded to
//! `POST <upstream>/webhooks/rest/webhook` and its answer passed through unchanged.

use std::time::Duration;

use baton_protocol::bot::{BotMessage, BotRequest};

use super::{Bot, BotAnswer, BotError, BotFut};

/// Largest upstream answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Forwards bot turns to an upstream Rasa REST endpoint.
pub struct RasaUpstream {
    endpoint: String,
    http: reqwest::Client,
}

impl RasaUpstream {
    /// An upstream at `base` (`http://rasa:5005`, or the full webhook URL) that must answer
    /// within `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let base = base.trim_end_matches('/');
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(format!("bot upstream `{base}` is not an http:// URL"));
        }
        if base.starts_with("https://") {
            return Err(format!(
                "bot upstream `{base}`: this build speaks plain http to the bot; reach it over a \
                 private network or a local TLS-terminating proxy"
            ));
        }
        let endpoint = if base.ends_with("/webhook") {
            base.to_owned()
        } else {
            format!("{base}/webhooks/rest/webhook")
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { endpoint, http })
    }

    /// Where bot turns are posted.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn call(&self, req: &BotRequest) -> Result<Vec<BotMessage>, BotError> {
        let mut resp = self
            .http
            .post(&self.endpoint)
            .json(req)
            .send()
            .await
            .map_err(|e| {
                BotError(if e.is_timeout() {
                    format!("the bot at {} did not answer in time", self.endpoint)
                } else {
                    format!("the bot at {} cannot be reached: {e}", self.endpoint)
                })
            })?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            BotError(format!(
                "the bot at {} broke off its answer: {e}",
                self.endpoint
            ))
        })? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(BotError(format!(
                    "the bot's answer is over {MAX_ANSWER_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(BotError(format!(
                "the bot at {} answered {status}",
                self.endpoint
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            BotError(format!(
                "the bot's answer is not a Rasa REST answer (a JSON array of messages): {e}"
            ))
        })
    }
}

impl Bot for RasaUpstream {
    fn kind(&self) -> &'static str {
        "rasa"
    }

    fn answer<'a>(&'a self, req: &'a BotRequest, _memory: Option<String>) -> BotFut<'a> {
        Box::pin(async move {
            Ok(BotAnswer {
                items: self.call(req).await?,
                memory: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_rasa_rest_webhook() {
        let t = Duration::from_secs(1);
        assert_eq!(
            RasaUpstream::new("http://rasa:5005/", t)
                .unwrap()
                .endpoint(),
            "http://rasa:5005/webhooks/rest/webhook"
        );
        assert_eq!(
            RasaUpstream::new("http://bot/custom/webhook", t)
                .unwrap()
                .endpoint(),
            "http://bot/custom/webhook"
        );
        assert!(RasaUpstream::new("rasa:5005", t).is_err());
    }
}
