//! Messages sent but not yet acknowledged. Each keeps its `client_msg_id`, so re-sending after
//! a dropped connection or a reload can never store it twice; the list is written to a
//! [`Storage`] on every change, so a reload re-sends what was pending.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use baton_protocol::bot::MessageSource;
use baton_protocol::ids::{ClientMsgId, ConversationId};
use serde::{Deserialize, Serialize};

/// Where the outbox is kept: `localStorage` / `sessionStorage` in the browser, memory in tests.
/// Writes may fail (storage full, private mode); the outbox then lives in memory only.
pub trait Storage {
    /// The value under `key`.
    fn get(&self, key: &str) -> Option<String>;
    /// Sets `key`.
    fn set(&self, key: &str, value: &str);
    /// Removes `key`.
    fn remove(&self, key: &str);
}

/// A storage in memory; clones share it (as two page views share `localStorage`).
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage(Rc<RefCell<HashMap<String, String>>>);

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Option<String> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &str) {
        self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
    }
    fn remove(&self, key: &str) {
        self.0.borrow_mut().remove(key);
    }
}

/// One message waiting for its acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its idempotency key.
    pub client_msg_id: ClientMsgId,
    /// The conversation it belongs to (the console writes to several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationId>,
    /// What goes to the server (a button's payload).
    pub text: String,
    /// What the sender sees (a button's title), when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown: Option<String>,
    /// Where it came from (typed, a button).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MessageSource>,
}

/// At most this many messages wait; beyond it the oldest is dropped (a client offline for
/// that long has bigger problems, and storage is small).
pub const CAPACITY: usize = 200;

/// The outbox.
pub struct Outbox<S: Storage> {
    storage: S,
    key: String,
    items: Vec<Pending>,
}

impl<S: Storage> Outbox<S> {
    /// The outbox kept under `key`, as an earlier page view left it (unreadable → empty).
    pub fn load(storage: S, key: &str) -> Self {
        let items = storage
            .get(key)
            .and_then(|json| crate::wire::read_pending(&json).ok())
            .unwrap_or_default();
        Self {
            storage,
            key: key.to_owned(),
            items,
        }
    }

    /// Adds a message (a second add of the same id replaces the first).
    pub fn add(&mut self, p: Pending) {
        self.items.retain(|i| i.client_msg_id != p.client_msg_id);
        self.items.push(p);
        if self.items.len() > CAPACITY {
            self.items.remove(0);
        }
        self.save();
    }

    /// The server stored it (or refused it for good): it leaves the outbox.
    pub fn settle(&mut self, id: &ClientMsgId) -> Option<Pending> {
        let at = self.items.iter().position(|i| &i.client_msg_id == id)?;
        let p = self.items.remove(at);
        self.save();
        Some(p)
    }

    /// Whether `id` is waiting.
    pub fn contains(&self, id: &ClientMsgId) -> bool {
        self.items.iter().any(|i| &i.client_msg_id == id)
    }

    /// Everything waiting, oldest first (to re-send after a welcome).
    pub fn pending(&self) -> &[Pending] {
        &self.items
    }

    /// Forgets everything (the credential was revoked: its messages can never be sent).
    pub fn clear(&mut self) {
        self.items.clear();
        self.storage.remove(&self.key);
    }

    fn save(&self) {
        if self.items.is_empty() {
            self.storage.remove(&self.key);
        } else {
            self.storage
                .set(&self.key, &crate::wire::write_pending(&self.items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Pending {
        Pending {
            client_msg_id: ClientMsgId(id.into()),
            conversation: None,
            text: format!("text of {id}"),
            shown: None,
            source: Some(MessageSource::Text),
        }
    }

    #[test]
    fn what_is_not_acknowledged_survives_a_reload_and_goes_once_acknowledged() {
        let storage = MemoryStorage::default();
        let mut o = Outbox::load(storage.clone(), "k");
        o.add(msg("a"));
        o.add(msg("b"));
        o.add(msg("c"));
        assert_eq!(o.settle(&ClientMsgId("b".into())), Some(msg("b")));
        // A reload: a new outbox over the same storage has what was still waiting, in order.
        let o2 = Outbox::load(storage.clone(), "k");
        let ids: Vec<&str> = o2
            .pending()
            .iter()
            .map(|p| p.client_msg_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(o2.contains(&ClientMsgId("c".into())));
        assert!(!o2.contains(&ClientMsgId("b".into())));
        // Settling everything leaves nothing behind in storage.
        let mut o2 = o2;
        o2.settle(&ClientMsgId("a".into()));
        o2.settle(&ClientMsgId("c".into()));
        assert_eq!(storage.get("k"), None);
        assert_eq!(o2.settle(&ClientMsgId("c".into())), None);
    }

    #[test]
    fn the_same_id_twice_is_one_message_and_the_outbox_is_bounded() {
        let mut o = Outbox::load(MemoryStorage::default(), "k");
        o.add(msg("a"));
        o.add(Pending {
            text: "changed".into(),
            ..msg("a")
        });
        assert_eq!(o.pending().len(), 1);
        assert_eq!(o.pending()[0].text, "changed");
        for i in 0..CAPACITY + 5 {
            o.add(msg(&format!("m{i}")));
        }
        assert_eq!(o.pending().len(), CAPACITY);
        assert_eq!(o.pending()[0].client_msg_id.as_str(), "m5");
    }

    #[test]
    fn unreadable_storage_starts_empty_and_clear_forgets() {
        let storage = MemoryStorage::default();
        storage.set("k", "{not json");
        let mut o = Outbox::load(storage.clone(), "k");
        assert!(o.pending().is_empty());
        o.add(msg("a"));
        o.clear();
        assert!(o.pending().is_empty());
        assert_eq!(storage.get("k"), None);
    }
}
