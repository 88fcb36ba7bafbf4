//! SQLite storage: one file, migrated at start, reached through one connection.
//!
//! Every operation runs inside one transaction under one lock, so a read-decide-write step
//! (read the state, run the transition, append the event) is atomic. Operations are short
//! (well under a millisecond on the hot path), which is why a blocking mutex is acceptable
//! inside async handlers here.

use std::path::Path;
use std::sync::Mutex;

use baton_protocol::bot::HandoverReason;
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState};
use baton_protocol::time::rfc3339_from_unix_ms;
use baton_protocol::ws::{Event, EventBody};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub use rusqlite::Error as StoreError;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: agents, sessions, conversations, events.
    "CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL
    );
    CREATE TABLE agent_sessions (
        token TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        visitor_id TEXT NOT NULL UNIQUE,
        token TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        message_to_agent TEXT,
        waiting_since_ms INTEGER NOT NULL,
        agent_id TEXT REFERENCES agents(id),
        head_seq INTEGER NOT NULL
    );
    CREATE TABLE events (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq INTEGER NOT NULL,
        ts_ms INTEGER NOT NULL,
        client_msg_id TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX events_idempotency ON events(conversation_id, client_msg_id)
        WHERE client_msg_id IS NOT NULL;",
];

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
}

/// A conversation row.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Its visitor.
    pub visitor_id: VisitorId,
    /// The visitor's socket token.
    pub token: String,
    /// Current state.
    pub state: ConversationState,
    /// Reason of the latest handover request.
    pub reason: HandoverReason,
    /// The bot's note for the agent.
    pub message_to_agent: Option<String>,
    /// When the latest handover request was made (Unix ms).
    pub waiting_since_ms: i64,
    /// The agent who owns it, when one does.
    pub agent_id: Option<AgentId>,
    /// Highest stored seq.
    pub head_seq: u64,
}

impl Store {
    /// Opens (creating if needed) and migrates the database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one transaction; commits if it returns `Ok`.
    pub fn tx<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // A poisoned lock only means another request panicked mid-transaction; SQLite rolled
        // that transaction back, so the connection is still consistent.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::ToSqlConversionFailure(Box::new(e))
}

fn from_json<T: serde::de::DeserializeOwned>(idx: usize, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| {
        StoreError::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

// ---- agents ----

/// Creates or updates an agent account by e-mail; returns its id.
pub fn upsert_agent(
    tx: &Transaction<'_>,
    new_id: &AgentId,
    email: &str,
    name: &str,
    hash: &str,
) -> Result<AgentId, StoreError> {
    tx.execute(
        "INSERT INTO agents (id, email, name, password_hash) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(email) DO UPDATE SET name = excluded.name, password_hash = excluded.password_hash",
        params![new_id.as_str(), email, name, hash],
    )?;
    tx.query_row("SELECT id FROM agents WHERE email = ?1", [email], |r| {
        Ok(AgentId(r.get(0)?))
    })
}

/// The agent and password hash for a login e-mail.
pub fn agent_by_email(
    tx: &Transaction<'_>,
    email: &str,
) -> Result<Option<(AgentRef, String)>, StoreError> {
    tx.query_row(
        "SELECT id, name, password_hash FROM agents WHERE email = ?1",
        [email],
        |r| {
            Ok((
                AgentRef {
                    id: AgentId(r.get(0)?),
                    name: r.get(1)?,
                },
                r.get(2)?,
            ))
        },
    )
    .optional()
}

/// Stores a login session token.
pub fn insert_agent_session(
    tx: &Transaction<'_>,
    token: &str,
    agent: &AgentId,
    now_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO agent_sessions (token, agent_id, created_ms) VALUES (?1, ?2, ?3)",
        params![token, agent.as_str(), now_ms],
    )?;
    Ok(())
}

/// The agent a session token belongs to.
pub fn agent_by_token(tx: &Transaction<'_>, token: &str) -> Result<Option<AgentRef>, StoreError> {
    tx.query_row(
        "SELECT a.id, a.name FROM agent_sessions s JOIN agents a ON a.id = s.agent_id WHERE s.token = ?1",
        [token],
        |r| Ok(AgentRef { id: AgentId(r.get(0)?), name: r.get(1)? }),
    )
    .optional()
}

/// An agent by id.
pub fn agent(tx: &Transaction<'_>, id: &AgentId) -> Result<Option<AgentRef>, StoreError> {
    tx.query_row(
        "SELECT id, name FROM agents WHERE id = ?1",
        [id.as_str()],
        |r| {
            Ok(AgentRef {
                id: AgentId(r.get(0)?),
                name: r.get(1)?,
            })
        },
    )
    .optional()
}

// ---- conversations ----

const CONV_COLUMNS: &str =
    "id, visitor_id, token, state, reason, message_to_agent, waiting_since_ms, agent_id, head_seq";

fn conv_from_row(r: &rusqlite::Row<'_>) -> Result<Conversation, StoreError> {
    let state: String = r.get(3)?;
    let reason: String = r.get(4)?;
    Ok(Conversation {
        id: ConversationId(r.get(0)?),
        visitor_id: VisitorId(r.get(1)?),
        token: r.get(2)?,
        state: from_json(3, &state)?,
        reason: from_json(4, &reason)?,
        message_to_agent: r.get(5)?,
        waiting_since_ms: r.get(6)?,
        agent_id: r.get::<_, Option<String>>(7)?.map(AgentId),
        head_seq: r.get::<_, i64>(8)? as u64,
    })
}

fn conv_where(
    tx: &Transaction<'_>,
    clause: &str,
    arg: &str,
) -> Result<Option<Conversation>, StoreError> {
    tx.query_row(
        &format!("SELECT {CONV_COLUMNS} FROM conversations WHERE {clause}"),
        [arg],
        conv_from_row,
    )
    .optional()
}

/// The conversation of a visitor.
pub fn conversation_by_visitor(
    tx: &Transaction<'_>,
    v: &VisitorId,
) -> Result<Option<Conversation>, StoreError> {
    conv_where(tx, "visitor_id = ?1", v.as_str())
}

/// A conversation by id.
pub fn conversation(
    tx: &Transaction<'_>,
    id: &ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    conv_where(tx, "id = ?1", id.as_str())
}

/// The conversation a visitor socket token opens.
pub fn conversation_by_token(
    tx: &Transaction<'_>,
    token: &str,
) -> Result<Option<Conversation>, StoreError> {
    conv_where(tx, "token = ?1", token)
}

/// Inserts a new conversation.
pub fn insert_conversation(tx: &Transaction<'_>, c: &Conversation) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO conversations ({CONV_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            c.id.as_str(),
            c.visitor_id.as_str(),
            c.token,
            serde_json::to_string(&c.state).map_err(json_err)?,
            serde_json::to_string(&c.reason).map_err(json_err)?,
            c.message_to_agent,
            c.waiting_since_ms,
            c.agent_id.as_ref().map(AgentId::as_str),
            c.head_seq as i64,
        ],
    )?;
    Ok(())
}

/// Writes back a conversation's mutable columns.
pub fn update_conversation(tx: &Transaction<'_>, c: &Conversation) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE conversations SET state = ?2, reason = ?3, message_to_agent = ?4, waiting_since_ms = ?5,
         agent_id = ?6, head_seq = ?7 WHERE id = ?1",
        params![
            c.id.as_str(),
            serde_json::to_string(&c.state).map_err(json_err)?,
            serde_json::to_string(&c.reason).map_err(json_err)?,
            c.message_to_agent,
            c.waiting_since_ms,
            c.agent_id.as_ref().map(AgentId::as_str),
            c.head_seq as i64,
        ],
    )?;
    Ok(())
}

/// Conversations in a given state name (`queued`, `agent_joined`, ...), oldest request first,
/// optionally only those owned by one agent.
pub fn conversations_in(
    tx: &Transaction<'_>,
    state: &str,
    owner: Option<&AgentId>,
) -> Result<Vec<Conversation>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {CONV_COLUMNS} FROM conversations
         WHERE json_extract(state, '$.state') = ?1 AND (?2 IS NULL OR agent_id = ?2)
         ORDER BY waiting_since_ms, id"
    ))?;
    let rows = stmt.query_map(params![state, owner.map(AgentId::as_str)], conv_from_row)?;
    rows.collect()
}

// ---- events ----

/// Appends a durable event at `head_seq + 1` and advances the conversation's head (the caller
/// writes the conversation back in the same transaction).
pub fn append_event(
    tx: &Transaction<'_>,
    conv: &mut Conversation,
    body: EventBody,
    client_msg_id: Option<&ClientMsgId>,
    now_ms: i64,
) -> Result<Event, StoreError> {
    let seq = conv.head_seq + 1;
    tx.execute(
        "INSERT INTO events (conversation_id, seq, ts_ms, client_msg_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            conv.id.as_str(),
            seq as i64,
            now_ms,
            client_msg_id.map(ClientMsgId::as_str),
            serde_json::to_string(&body).map_err(json_err)?,
        ],
    )?;
    conv.head_seq = seq;
    Ok(Event {
        seq,
        ts: rfc3339_from_unix_ms(now_ms),
        body,
    })
}

/// The seq already stored for a client message id, if it was stored before (a retry).
pub fn seq_of_client_msg(
    tx: &Transaction<'_>,
    conv: &ConversationId,
    id: &ClientMsgId,
) -> Result<Option<u64>, StoreError> {
    tx.query_row(
        "SELECT seq FROM events WHERE conversation_id = ?1 AND client_msg_id = ?2",
        [conv.as_str(), id.as_str()],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.map(|s| s as u64))
}

/// Events with seq greater than `after`, oldest first, at most `limit`.
pub fn events_after(
    tx: &Transaction<'_>,
    conv: &ConversationId,
    after: u64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT seq, ts_ms, body FROM events WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![conv.as_str(), after as i64, limit as i64], |r| {
        let body: String = r.get(2)?;
        Ok(Event {
            seq: r.get::<_, i64>(0)? as u64,
            ts: rfc3339_from_unix_ms(r.get(1)?),
            body: from_json(2, &body)?,
        })
    })?;
    rows.collect()
}

/// The text of the latest visitor message, for queue previews.
pub fn last_visitor_text(
    tx: &Transaction<'_>,
    conv: &ConversationId,
) -> Result<Option<String>, StoreError> {
    tx.query_row(
        "SELECT json_extract(body, '$.text') FROM events
         WHERE conversation_id = ?1 AND json_extract(body, '$.type') = 'message'
           AND json_extract(body, '$.role') = 'visitor'
         ORDER BY seq DESC LIMIT 1",
        [conv.as_str()],
        |r| r.get(0),
    )
    .optional()
}
