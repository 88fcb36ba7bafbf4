//! [`Store`] on SQLite or PostgreSQL through sqlx's `Any` driver. Every query below runs
//! unchanged on both (they share `$N` placeholders, `ON CONFLICT`, `RETURNING`, partial
//! indexes); the backends differ only in their migrations and in how the pools are set up.

use std::time::Duration;

use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::time::rfc3339_from_unix_ms;
use baton_protocol::ws::{Event, EventBody, LeftMessage, Rating, Role};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::migrations;
use super::{
    AgentRecord, AgentRole, Commit, Conversation, Fut, Handover, NewConversation, NewMessage,
    NewRating, Offer, OnlineAgent, Scope, Staff, StateColumns, Store, StoreError, author_of,
};
use baton_protocol::bot::{HandoverReason, Slot};
use baton_protocol::decide::View;

/// A SQLite file or a PostgreSQL database.
pub struct SqlStore {
    backend: &'static str,
    /// Writes. On SQLite a single connection, so writers queue here instead of failing
    /// with `SQLITE_BUSY`; on PostgreSQL the same pool as `read`.
    write: AnyPool,
    /// Reads. On SQLite several connections, which WAL lets read beside the writer.
    read: AnyPool,
}

macro_rules! select_conversations {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, c.visitor_id, c.credential_hash, c.created_ms, c.head_seq, ",
            "c.last_visitor_seq, c.last_request_seq, c.state, c.state_reason, c.ended_by, ",
            "c.next_open_at, c.agent_id, c.agent_name, c.last_visitor_text, ",
            "c.visitor_read_seq, c.agent_read_seq, ",
            "h.id AS h_id, h.queue AS h_queue, h.skill AS h_skill, h.reason AS h_reason, ",
            "h.message_to_agent AS h_message_to_agent, h.page_url AS h_page_url, ",
            "h.reason_text AS h_reason_text, h.slots AS h_slots, h.locale AS h_locale, ",
            "h.requested_ms AS h_requested_ms, h.accepted_ms AS h_accepted_ms, ",
            "h.ended_ms AS h_ended_ms, h.agent_id AS h_agent_id, h.outcome AS h_outcome ",
            $tail
        )
    };
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn conversation_from(r: &AnyRow) -> Result<Conversation, StoreError> {
    let state = StateColumns::state(
        &r.try_get::<String, _>("state")?,
        r.try_get("state_reason")?,
        r.try_get("ended_by")?,
        r.try_get("next_open_at")?,
        r.try_get("agent_id")?,
        r.try_get("agent_name")?,
    )?;
    let handover = match r.try_get::<Option<i64>, _>("h_id")? {
        None => None,
        Some(id) => Some(Handover {
            id,
            queue: r.try_get("h_queue")?,
            skill: r.try_get("h_skill")?,
            reason: HandoverReason::from_name(&r.try_get::<String, _>("h_reason")?),
            message_to_agent: r.try_get("h_message_to_agent")?,
            page_url: r.try_get("h_page_url")?,
            reason_text: r.try_get("h_reason_text")?,
            slots: match r.try_get::<Option<String>, _>("h_slots")? {
                None => vec![],
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Db(format!("stored slots do not decode: {e}")))?,
            },
            locale: r.try_get("h_locale")?,
            requested_ms: r.try_get("h_requested_ms")?,
            accepted_ms: r.try_get("h_accepted_ms")?,
            ended_ms: r.try_get("h_ended_ms")?,
            agent_id: r.try_get::<Option<String>, _>("h_agent_id")?.map(AgentId),
            outcome: r.try_get("h_outcome")?,
        }),
    };
    Ok(Conversation {
        id: ConversationId(r.try_get("id")?),
        visitor_id: VisitorId(r.try_get("visitor_id")?),
        has_credential: r.try_get::<Option<String>, _>("credential_hash")?.is_some(),
        view: View {
            state,
            head_seq: u64_of(r.try_get("head_seq")?),
            last_visitor_seq: u64_of(r.try_get("last_visitor_seq")?),
            last_request_seq: u64_of(r.try_get("last_request_seq")?),
        },
        handover,
        last_visitor_text: r.try_get("last_visitor_text")?,
        created_ms: r.try_get("created_ms")?,
        visitor_read_seq: u64_of(r.try_get("visitor_read_seq")?),
        agent_read_seq: u64_of(r.try_get("agent_read_seq")?),
    })
}

fn event_from(r: &AnyRow) -> Result<Event, StoreError> {
    let body: String = r.try_get("body")?;
    Ok(Event {
        seq: u64_of(r.try_get("seq")?),
        ts: rfc3339_from_unix_ms(r.try_get("ts_ms")?),
        body: serde_json::from_str(&body)
            .map_err(|e| StoreError::Db(format!("stored event does not decode: {e}")))?,
    })
}

/// The columns an agent is read with (a macro, so queries stay literal strings).
macro_rules! agent_columns {
    () => {
        "id, email, name, password_hash, queues, skills, role, max_chats"
    };
}

fn agent_from(r: &AnyRow) -> Result<AgentRecord, StoreError> {
    Ok(AgentRecord {
        id: AgentId(r.try_get("id")?),
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        scope: scope_from(r)?,
        role: match r.try_get::<String, _>("role")?.as_str() {
            "supervisor" => AgentRole::Supervisor,
            _ => AgentRole::Agent,
        },
        max_chats: r
            .try_get::<Option<i64>, _>("max_chats")?
            .map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
    })
}

/// Queue and skill lists are stored as JSON arrays of strings (names may hold any text a
/// directive carries).
fn scope_from(r: &AnyRow) -> Result<Scope, StoreError> {
    let list = |col: &str| -> Result<Vec<String>, StoreError> {
        let text: String = r.try_get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Db(format!("agents.{col} does not decode: {e}")))
    };
    Ok(Scope {
        queues: list("queues")?,
        skills: list("skills")?,
    })
}

fn offer_from(r: &AnyRow) -> Result<Offer, StoreError> {
    Ok(Offer {
        conversation_id: ConversationId(r.try_get("conversation_id")?),
        from: baton_protocol::state::AgentRef {
            id: AgentId(r.try_get("from_agent")?),
            name: r.try_get("from_name")?,
        },
        to: AgentId(r.try_get("to_agent")?),
        note: r.try_get("note")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn count(r: &AnyRow) -> Result<u32, StoreError> {
    Ok(u32::try_from(r.try_get::<i64, _>("n")?).unwrap_or(u32::MAX))
}

/// A unique-key violation means another writer got there first: decide again.
fn conflict_or(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::from(e),
    }
}

/// `sqlite://` URL for a file path (sqlx percent-decodes the path).
fn sqlite_url(path: &str) -> String {
    let mut out = String::from("sqlite://");
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.push_str("?mode=rwc");
    out
}

/// Creates the database file readable by its owner only, before SQLite opens it: SQLite
/// gives the `-wal` and `-shm` files the same permissions.
fn create_private_file(path: &str) -> Result<(), StoreError> {
    let p = std::path::Path::new(path);
    if p.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(p) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Db(format!("cannot create {path}: {e}"))),
    }
}

async fn migrate(pool: &AnyPool, backend: &'static str) -> Result<(), StoreError> {
    let list = if backend == "postgres" {
        migrations::POSTGRES
    } else {
        migrations::SQLITE
    };
    let mut tx = pool.begin().await?;
    if backend == "postgres" {
        // Replicas starting together migrate one after the other.
        sqlx::query("SELECT pg_advisory_xact_lock(727202611)")
            .execute(&mut *tx)
            .await?;
    } else {
        let skeleton = sqlx::query(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'conversations'
             AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'baton_migrations')",
        )
        .fetch_one(&mut *tx)
        .await?;
        if count(&skeleton)? > 0 {
            return Err(StoreError::Db(
                "this database was made by the walking-skeleton build, whose schema cannot be \
                 migrated; move the file away (or delete it) and start again"
                    .into(),
            ));
        }
    }
    tx.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS baton_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    ))
    .await?;
    let done = sqlx::query("SELECT COUNT(*) AS n FROM baton_migrations")
        .fetch_one(&mut *tx)
        .await?;
    let done = count(&done)? as usize;
    if done > list.len() {
        return Err(StoreError::Db(format!(
            "the database has {done} migrations but this build knows {}: it was written by a newer Baton",
            list.len()
        )));
    }
    for (i, sql) in list.iter().enumerate().skip(done) {
        tx.execute(sqlx::raw_sql(*sql)).await?;
        sqlx::query("INSERT INTO baton_migrations (version, applied_ms) VALUES ($1, $2)")
            .bind(i as i64 + 1)
            .bind(crate::clock::system_now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `rows` tuples of the seven event values bound from `$first` on, each after `lead` (the
/// conversation id's placeholder) when given: `($1, $2, …, $8), ($1, $9, …)`.
fn event_rows(rows: usize, first: usize, lead: Option<&str>) -> String {
    (0..rows)
        .map(|i| {
            let p = first + i * 7;
            let values: Vec<String> = (p..p + 7).map(|n| format!("${n}")).collect();
            match lead {
                Some(l) => format!("({l}, {})", values.join(", ")),
                None => format!("({})", values.join(", ")),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A new handover row, as a commit's events describe it.
struct HandoverInsert {
    request_seq: i64,
    queue: String,
    skill: Option<String>,
    reason: &'static str,
    reason_text: Option<String>,
    message_to_agent: Option<String>,
    page_url: Option<String>,
    slots: Option<String>,
    locale: Option<String>,
    outcome: &'static str,
}

/// Slots as stored: a JSON array, or NULL when there are none.
fn slots_json(slots: &[Slot]) -> Option<String> {
    (!slots.is_empty()).then(|| serde_json::to_string(slots).expect("slots serialise"))
}

/// A change to the current handover row.
struct HandoverUpdate {
    outcome: &'static str,
    ended_ms: Option<i64>,
    accepted_ms: Option<i64>,
    agent_id: Option<String>,
}

/// What a commit does to handover rows: at most one new row and at most one change to the
/// current one, which covers every commit the decider makes; anything else (`None`) takes
/// the general path.
struct HandoverPlan {
    insert: Option<HandoverInsert>,
    update: Option<HandoverUpdate>,
}

impl HandoverPlan {
    fn of(events: &[Event], now_ms: i64) -> Option<Self> {
        let mut plan = Self {
            insert: None,
            update: None,
        };
        let set_update = |u: HandoverUpdate, plan: &mut Self| {
            if plan.update.is_some() || plan.insert.is_some() {
                return None;
            }
            plan.update = Some(u);
            Some(())
        };
        for e in events {
            match &e.body {
                EventBody::HandoverRequested {
                    reason,
                    reason_text,
                    message_to_agent,
                    queue,
                    skill,
                    page_url,
                    slots,
                    locale,
                } => {
                    if plan.insert.is_some() || plan.update.is_some() {
                        return None;
                    }
                    let outcome = events.iter().find_map(|x| match &x.body {
                        EventBody::HandoverOutcome { outcome } if x.seq == e.seq + 1 => {
                            Some(outcome.name())
                        }
                        _ => None,
                    });
                    plan.insert = Some(HandoverInsert {
                        request_seq: i64_of(e.seq),
                        queue: queue
                            .clone()
                            .unwrap_or_else(|| baton_protocol::decide::DEFAULT_QUEUE.into()),
                        skill: skill.clone(),
                        reason: reason.as_str(),
                        reason_text: reason_text.clone(),
                        message_to_agent: message_to_agent.clone(),
                        page_url: page_url.clone(),
                        slots: slots_json(slots),
                        locale: locale.clone(),
                        outcome: outcome.unwrap_or("requested"),
                    });
                }
                EventBody::HandoverOutcome { .. }
                    if events.iter().any(|x| {
                        x.seq + 1 == e.seq && matches!(x.body, EventBody::HandoverRequested { .. })
                    }) => {}
                EventBody::HandoverOutcome { outcome } => set_update(
                    HandoverUpdate {
                        outcome: outcome.name(),
                        ended_ms: None,
                        accepted_ms: None,
                        agent_id: None,
                    },
                    &mut plan,
                )?,
                EventBody::HandoverCancelled | EventBody::ChatEnded { .. } => set_update(
                    HandoverUpdate {
                        outcome: if matches!(e.body, EventBody::HandoverCancelled) {
                            "cancelled"
                        } else {
                            "ended"
                        },
                        ended_ms: Some(now_ms),
                        accepted_ms: None,
                        agent_id: None,
                    },
                    &mut plan,
                )?,
                EventBody::AgentJoined { agent } => set_update(
                    HandoverUpdate {
                        outcome: "accepted",
                        ended_ms: None,
                        accepted_ms: Some(now_ms),
                        agent_id: Some(agent.id.0.clone()),
                    },
                    &mut plan,
                )?,
                // Rare (an agent went offline, a transfer): the general path changes the row.
                EventBody::AgentLeft { .. } | EventBody::Transferred { .. } => return None,
                _ => {}
            }
        }
        Some(plan)
    }
}

impl SqlStore {
    /// Opens the database named by `url` (a `postgres://` URL or a SQLite file path),
    /// creating and migrating it as needed.
    pub async fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool_size = pool_size.max(1);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(pool_size)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            migrate(&pool, "postgres").await?;
            return Ok(Self {
                backend: "postgres",
                write: pool.clone(),
                read: pool,
            });
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        create_private_file(path)?;
        let url = sqlite_url(path);
        let options = |n: u32| {
            AnyPoolOptions::new()
                .max_connections(n)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Checkpoints run in the background (below), not inside a commit.
                        conn.execute(sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                             PRAGMA wal_autocheckpoint = 0;",
                        ))
                        .await?;
                        Ok(())
                    })
                })
        };
        let write = options(1).connect(&url).await?;
        migrate(&write, "sqlite").await?;
        let read = options(pool_size.min(8)).connect(&url).await?;
        // Copy the WAL back into the database once a second, beside the writer rather than
        // in the middle of one of its commits; ends when the pool is closed.
        let checkpoints = read.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if checkpoints.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpoints)
                    .await
                {
                    if checkpoints.is_closed() {
                        return;
                    }
                    tracing::warn!("sqlite checkpoint: {e}");
                }
            }
        });
        Ok(Self {
            backend: "sqlite",
            write,
            read,
        })
    }

    /// The one conversation `sql` (a `select_conversations!` with one `$1`) finds for `key`.
    async fn conversation_where(
        &self,
        sql: &'static str,
        key: String,
    ) -> Result<Option<Conversation>, StoreError> {
        sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(conversation_from)
            .transpose()
    }
}

impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn create_conversation(&self, c: NewConversation) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO conversations (id, visitor_id, credential_hash, created_ms, updated_ms,
                     head_seq, last_visitor_seq, last_request_seq, state)
                 VALUES ($1, $2, $3, $4, $4, 0, 0, 0, 'bot')",
            )
            .bind(c.id.0)
            .bind(c.visitor_id.0)
            .bind(c.credential_hash)
            .bind(c.now_ms)
            .execute(&self.write)
            .await
            .map_err(conflict_or)?;
            Ok(())
        })
    }

    fn conversation_for_sender(&self, c: NewConversation) -> Fut<'_, Conversation> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO conversations (id, visitor_id, credential_hash, created_ms, updated_ms,
                     head_seq, last_visitor_seq, last_request_seq, state)
                 VALUES ($1, $2, NULL, $3, $3, 0, 0, 0, 'bot')
                 ON CONFLICT (visitor_id) DO NOTHING",
            )
            .bind(c.id.0)
            .bind(c.visitor_id.0.clone())
            .bind(c.now_ms)
            .execute(&self.write)
            .await?;
            self.conversation_by_visitor(&c.visitor_id)
                .await?
                .ok_or_else(|| StoreError::Db("conversation vanished after insert".into()))
        })
    }

    fn conversation<'a>(&'a self, id: &'a ConversationId) -> Fut<'a, Option<Conversation>> {
        Box::pin(self.conversation_where(
            select_conversations!(
                "FROM conversations c LEFT JOIN handovers h ON h.id = c.handover_id WHERE c.id = $1"
            ),
            id.0.clone(),
        ))
    }

    fn conversation_by_visitor<'a>(&'a self, v: &'a VisitorId) -> Fut<'a, Option<Conversation>> {
        Box::pin(self.conversation_where(
            select_conversations!(
                "FROM conversations c LEFT JOIN handovers h ON h.id = c.handover_id WHERE c.visitor_id = $1"
            ),
            v.0.clone(),
        ))
    }

    fn conversation_by_credential<'a>(&'a self, hash: &'a str) -> Fut<'a, Option<Conversation>> {
        Box::pin(self.conversation_where(
            select_conversations!(
                "FROM conversations c LEFT JOIN handovers h ON h.id = c.handover_id WHERE c.credential_hash = $1"
            ),
            hash.to_owned(),
        ))
    }

    fn commit<'a>(&'a self, c: &'a Commit) -> Fut<'a, Option<i64>> {
        Box::pin(async move {
            let cols = StateColumns::of(&c.view.state);
            let last_visitor_text = c.events.iter().rev().find_map(|e| match &e.body {
                EventBody::Message {
                    role: Role::Visitor,
                    text,
                    ..
                } => Some(text.clone()),
                _ => None,
            });
            let conv = c.conversation.0.clone();
            let rows = c.events.len();
            let bind_events = |mut q: sqlx::query::Query<
                'a,
                sqlx::Any,
                sqlx::any::AnyArguments,
            >|
             -> Result<_, StoreError> {
                for e in &c.events {
                    let client_msg_id = match &e.body {
                        EventBody::Message { client_msg_id, .. } => client_msg_id.clone(),
                        _ => None,
                    };
                    let body = serde_json::to_string(&e.body)
                        .map_err(|err| StoreError::Db(format!("event does not encode: {err}")))?;
                    q = q
                        .bind(i64_of(e.seq))
                        .bind(c.now_ms)
                        .bind(e.body.kind())
                        .bind(author_of(&e.body))
                        .bind(client_msg_id.map(|i| i.0))
                        .bind(c.reply_to.map(i64_of))
                        .bind(body);
                }
                Ok(q)
            };
            let update = |q: sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments>| {
                q.bind(i64_of(c.view.head_seq))
                    .bind(i64_of(c.view.last_visitor_seq))
                    .bind(i64_of(c.view.last_request_seq))
                    .bind(cols.state)
                    .bind(cols.reason.clone())
                    .bind(cols.ended_by.clone())
                    .bind(cols.next_open_at.clone())
                    .bind(cols.agent_id.clone())
                    .bind(cols.agent_name.clone())
                    .bind(c.now_ms)
                    .bind(last_visitor_text.clone())
                    .bind(conv.clone())
                    .bind(i64_of(c.expected_head))
            };
            const SET: &str = "UPDATE conversations SET head_seq = $1, last_visitor_seq = $2, \
                last_request_seq = $3, state = $4, state_reason = $5, ended_by = $6, next_open_at = $7, \
                agent_id = $8, agent_name = $9, updated_ms = $10, \
                last_visitor_text = COALESCE($11, last_visitor_text)";
            const WHERE: &str = "WHERE id = $12 AND head_seq = $13";
            const COLUMNS: &str =
                "(conversation_id, seq, ts_ms, kind, author, client_msg_id, reply_to, body)";
            if self.backend == "postgres"
                && c.capacity.is_none()
                && let Some(plan) = HandoverPlan::of(&c.events, c.now_ms)
            {
                // On PostgreSQL every commit is one statement, so one round trip: the
                // conditional update, the handover row and the events, as data-modifying
                // CTEs. No conversation row updated means nothing inserted.
                let mut n = 13;
                let mut next = || {
                    n += 1;
                    format!("${n}")
                };
                let mut sql = format!("WITH u AS ({SET}");
                if plan.insert.is_some() {
                    sql.push_str(
                        ", handover_id = nextval(pg_get_serial_sequence('handovers', 'id'))",
                    );
                }
                sql.push_str(&format!(" {WHERE} RETURNING id, handover_id)"));
                if plan.insert.is_some() {
                    let p: Vec<String> = (0..11).map(|_| next()).collect();
                    sql.push_str(&format!(
                        ", h AS (INSERT INTO handovers (id, conversation_id, request_seq, queue, skill, \
                         reason, reason_text, message_to_agent, page_url, slots, locale, requested_ms, \
                         outcome) SELECT u.handover_id, u.id, {} FROM u)",
                        p.join(", ")
                    ));
                }
                if plan.update.is_some() {
                    let (o, e, a, g) = (next(), next(), next(), next());
                    sql.push_str(&format!(
                        ", g AS (UPDATE handovers SET outcome = {o}, \
                         ended_ms = COALESCE({e}, handovers.ended_ms), \
                         accepted_ms = COALESCE({a}, handovers.accepted_ms), \
                         agent_id = COALESCE({g}, handovers.agent_id) \
                         FROM u WHERE handovers.id = u.handover_id)"
                    ));
                }
                sql.push_str(&format!(
                    " INSERT INTO events {COLUMNS} \
                     SELECT u.id, v.seq, v.ts_ms, v.kind, v.author, v.client_msg_id, v.reply_to, v.body \
                     FROM u, (VALUES {}) AS v(seq, ts_ms, kind, author, client_msg_id, reply_to, body) \
                     RETURNING (SELECT handover_id FROM u) AS handover_id",
                    event_rows(rows, n + 1, None)
                ));
                let mut q = update(sqlx::query(sqlx::AssertSqlSafe(sql)));
                if let Some(h) = &plan.insert {
                    q = q
                        .bind(h.request_seq)
                        .bind(h.queue.clone())
                        .bind(h.skill.clone())
                        .bind(h.reason)
                        .bind(h.reason_text.clone())
                        .bind(h.message_to_agent.clone())
                        .bind(h.page_url.clone())
                        .bind(h.slots.clone())
                        .bind(h.locale.clone())
                        .bind(c.now_ms)
                        .bind(h.outcome);
                }
                if let Some(u) = &plan.update {
                    q = q
                        .bind(u.outcome)
                        .bind(u.ended_ms)
                        .bind(u.accepted_ms)
                        .bind(u.agent_id.clone());
                }
                let rows = bind_events(q)?
                    .fetch_all(&self.write)
                    .await
                    .map_err(conflict_or)?;
                let Some(first) = rows.first() else {
                    return Err(StoreError::Conflict);
                };
                return Ok(if plan.insert.is_some() {
                    first.try_get::<Option<i64>, _>("handover_id")?
                } else {
                    None
                });
            }
            let mut tx = self.write.begin().await?;
            if let Some(cap) = &c.capacity {
                // One more chat for an agent at its limit is refused here, in the commit:
                // on PostgreSQL the agent's row is locked first, so two commits for the same
                // agent count one after the other (SQLite has one writer).
                if self.backend == "postgres" {
                    sqlx::query("SELECT id FROM agents WHERE id = $1 FOR UPDATE")
                        .bind(cap.agent.0.clone())
                        .fetch_optional(&mut *tx)
                        .await?;
                }
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n FROM conversations
                     WHERE agent_id = $1 AND state = 'agent_joined' AND id <> $2",
                )
                .bind(cap.agent.0.clone())
                .bind(conv.clone())
                .fetch_one(&mut *tx)
                .await?;
                let n = count(&row)?;
                if n >= cap.limit {
                    return Err(StoreError::Full(n));
                }
            }
            let moved = update(sqlx::query(sqlx::AssertSqlSafe(format!("{SET} {WHERE}"))))
                .execute(&mut *tx)
                .await?;
            if moved.rows_affected() == 0 {
                return Err(StoreError::Conflict);
            }
            let sql = format!(
                "INSERT INTO events {COLUMNS} VALUES {}",
                event_rows(rows, 2, Some("$1"))
            );
            bind_events(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(conv.clone()))?
                .execute(&mut *tx)
                .await
                .map_err(conflict_or)?;
            let mut new_handover = None;
            for e in &c.events {
                // The handover row follows the events that concern it.
                let current = "(SELECT handover_id FROM conversations WHERE id = $1)";
                match &e.body {
                    EventBody::HandoverRequested {
                        reason,
                        reason_text,
                        message_to_agent,
                        queue,
                        skill,
                        page_url,
                        slots,
                        locale,
                    } => {
                        // The outcome decided in the same commit goes in with the row.
                        let outcome = c.events.iter().find_map(|x| match &x.body {
                            EventBody::HandoverOutcome { outcome } if x.seq == e.seq + 1 => {
                                Some(outcome.name())
                            }
                            _ => None,
                        });
                        let row = sqlx::query(
                            "INSERT INTO handovers (conversation_id, request_seq, queue, skill, reason,
                                 reason_text, message_to_agent, page_url, slots, locale, requested_ms, outcome)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                        )
                        .bind(conv.clone())
                        .bind(i64_of(e.seq))
                        .bind(
                            queue
                                .clone()
                                .unwrap_or_else(|| baton_protocol::decide::DEFAULT_QUEUE.into()),
                        )
                        .bind(skill.clone())
                        .bind(reason.as_str())
                        .bind(reason_text.clone())
                        .bind(message_to_agent.clone())
                        .bind(page_url.clone())
                        .bind(slots_json(slots))
                        .bind(locale.clone())
                        .bind(c.now_ms)
                        .bind(outcome.unwrap_or("requested"))
                        .fetch_one(&mut *tx)
                        .await?;
                        let id: i64 = row.try_get("id")?;
                        new_handover = Some(id);
                        sqlx::query("UPDATE conversations SET handover_id = $1 WHERE id = $2")
                            .bind(id)
                            .bind(conv.clone())
                            .execute(&mut *tx)
                            .await?;
                    }
                    EventBody::HandoverOutcome { .. }
                        if c.events.iter().any(|x| {
                            x.seq + 1 == e.seq
                                && matches!(x.body, EventBody::HandoverRequested { .. })
                        }) => {}
                    EventBody::HandoverOutcome { outcome } => {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handovers SET outcome = $2 WHERE id = {current}"
                        )))
                        .bind(conv.clone())
                        .bind(outcome.name())
                        .execute(&mut *tx)
                        .await?;
                    }
                    EventBody::HandoverCancelled | EventBody::ChatEnded { .. } => {
                        let outcome = if matches!(e.body, EventBody::HandoverCancelled) {
                            "cancelled"
                        } else {
                            "ended"
                        };
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handovers SET outcome = $2, ended_ms = $3 WHERE id = {current}"
                        )))
                        .bind(conv.clone())
                        .bind(outcome)
                        .bind(c.now_ms)
                        .execute(&mut *tx)
                        .await?;
                    }
                    EventBody::AgentJoined { agent } => {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handovers SET outcome = 'accepted', accepted_ms = $2, agent_id = $3
                             WHERE id = {current}"
                        )))
                        .bind(conv.clone())
                        .bind(c.now_ms)
                        .bind(agent.id.0.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    // Another agent has it now.
                    EventBody::Transferred {
                        to: Some(agent), ..
                    } => {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handovers SET agent_id = $2 WHERE id = {current}"
                        )))
                        .bind(conv.clone())
                        .bind(agent.id.0.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    // Waiting again in the queue it was handed to (which needs no skill), at
                    // the place its request had.
                    EventBody::Transferred {
                        to: None, queue, ..
                    } => {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handovers SET outcome = 'queued', accepted_ms = NULL, agent_id = NULL,
                                 queued_ms = $2, queue = COALESCE($3, queue), skill = NULL
                             WHERE id = {current}"
                        )))
                        .bind(conv.clone())
                        .bind(c.now_ms)
                        .bind(queue.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    // Waiting again, at the place its request had (`requested_ms` is kept).
                    EventBody::AgentLeft { .. } => {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handovers SET outcome = 'queued', accepted_ms = NULL, agent_id = NULL,
                                 queued_ms = $2
                             WHERE id = {current}"
                        )))
                        .bind(conv.clone())
                        .bind(c.now_ms)
                        .execute(&mut *tx)
                        .await?;
                    }
                    _ => {}
                }
            }
            tx.commit().await?;
            Ok(new_handover)
        })
    }

    fn event_by_client_msg_id<'a>(
        &'a self,
        conv: &'a ConversationId,
        author: &'a str,
        id: &'a ClientMsgId,
    ) -> Fut<'a, Option<Event>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT seq, ts_ms, body FROM events
                 WHERE conversation_id = $1 AND author = $2 AND client_msg_id = $3",
            )
            .bind(conv.0.clone())
            .bind(author.to_owned())
            .bind(id.0.clone())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(event_from)
            .transpose()
        })
    }

    fn replies_to<'a>(&'a self, conv: &'a ConversationId, seq: u64) -> Fut<'a, Vec<Event>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT seq, ts_ms, body FROM events WHERE conversation_id = $1 AND reply_to = $2 ORDER BY seq",
            )
            .bind(conv.0.clone())
            .bind(i64_of(seq))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(event_from)
            .collect()
        })
    }

    fn mark_read<'a>(
        &'a self,
        conv: &'a ConversationId,
        agent: Option<&'a AgentId>,
        seq: u64,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = match agent {
                // Only the agent who has the chat now.
                Some(agent) => {
                    sqlx::query(
                        "UPDATE conversations SET agent_read_seq = $1
                         WHERE id = $2 AND agent_read_seq < $1 AND head_seq >= $1
                           AND agent_id = $3 AND state = 'agent_joined'",
                    )
                    .bind(i64_of(seq))
                    .bind(conv.0.clone())
                    .bind(agent.0.clone())
                    .execute(&self.write)
                    .await?
                }
                None => {
                    sqlx::query(
                        "UPDATE conversations SET visitor_read_seq = $1
                         WHERE id = $2 AND visitor_read_seq < $1 AND head_seq >= $1",
                    )
                    .bind(i64_of(seq))
                    .bind(conv.0.clone())
                    .execute(&self.write)
                    .await?
                }
            };
            Ok(done.rows_affected() > 0)
        })
    }

    fn events_after<'a>(
        &'a self,
        conv: &'a ConversationId,
        after: u64,
        limit: u32,
    ) -> Fut<'a, Vec<Event>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT seq, ts_ms, body FROM events WHERE conversation_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
            )
            .bind(conv.0.clone())
            .bind(i64_of(after))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(event_from)
            .collect()
        })
    }

    fn waiting(&self) -> Fut<'_, Vec<Conversation>> {
        Box::pin(async move {
            sqlx::query(select_conversations!(
                "FROM handovers h JOIN conversations c ON c.id = h.conversation_id
                 WHERE h.outcome = 'queued' ORDER BY h.requested_ms, h.id"
            ))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(conversation_from)
            .collect()
        })
    }

    fn queue_order(&self) -> Fut<'_, Vec<(ConversationId, String)>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT conversation_id, queue FROM handovers WHERE outcome = 'queued'
                 ORDER BY queue, requested_ms, id",
            )
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    ConversationId(r.try_get("conversation_id")?),
                    r.try_get("queue")?,
                ))
            })
            .collect()
        })
    }

    fn queue_position(&self, handover_id: i64) -> Fut<'_, Option<u32>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM handovers h JOIN handovers o ON o.queue = h.queue
                 WHERE h.id = $1 AND h.outcome = 'queued' AND o.outcome = 'queued'
                   AND (o.requested_ms < h.requested_ms OR (o.requested_ms = h.requested_ms AND o.id <= h.id))",
            )
            .bind(handover_id)
            .fetch_one(&self.read)
            .await?;
            let n = count(&row)?;
            Ok((n > 0).then_some(n))
        })
    }

    fn queue_length(&self) -> Fut<'_, u32> {
        Box::pin(async move {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM handovers WHERE outcome = 'queued'")
                .fetch_one(&self.read)
                .await?;
            count(&row)
        })
    }

    fn overdue(&self, since_ms: i64) -> Fut<'_, Vec<Conversation>> {
        Box::pin(async move {
            sqlx::query(select_conversations!(
                "FROM handovers h JOIN conversations c ON c.id = h.conversation_id
                 WHERE h.outcome = 'queued' AND COALESCE(h.queued_ms, h.requested_ms) < $1
                 ORDER BY h.requested_ms, h.id"
            ))
            .bind(since_ms)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(conversation_from)
            .collect()
        })
    }

    fn stranded(&self, now_ms: i64) -> Fut<'_, Vec<Conversation>> {
        Box::pin(async move {
            sqlx::query(select_conversations!(
                "FROM conversations c LEFT JOIN handovers h ON h.id = c.handover_id
                 WHERE c.state = 'agent_joined' AND c.agent_id NOT IN
                     (SELECT agent_id FROM agent_presence WHERE lease_until_ms > $1)
                 ORDER BY h.accepted_ms, c.id"
            ))
            .bind(now_ms)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(conversation_from)
            .collect()
        })
    }

    fn owned_by<'a>(&'a self, agent: &'a AgentId) -> Fut<'a, Vec<Conversation>> {
        Box::pin(async move {
            sqlx::query(select_conversations!(
                "FROM conversations c LEFT JOIN handovers h ON h.id = c.handover_id
                 WHERE c.agent_id = $1 AND c.state = 'agent_joined' ORDER BY h.accepted_ms, c.id"
            ))
            .bind(agent.0.clone())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(conversation_from)
            .collect()
        })
    }

    fn live_chats(&self) -> Fut<'_, Vec<Conversation>> {
        Box::pin(async move {
            sqlx::query(select_conversations!(
                "FROM conversations c LEFT JOIN handovers h ON h.id = c.handover_id
                 WHERE c.state = 'agent_joined' ORDER BY h.accepted_ms, c.id"
            ))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(conversation_from)
            .collect()
        })
    }

    fn agent_loads(&self) -> Fut<'_, Vec<(AgentId, u32)>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT agent_id, COUNT(*) AS n FROM conversations
                 WHERE state = 'agent_joined' AND agent_id IS NOT NULL GROUP BY agent_id",
            )
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| Ok((AgentId(r.try_get("agent_id")?), count(r)?)))
            .collect()
        })
    }

    fn recent_accepts(&self, since_ms: i64, limit: u32) -> Fut<'_, Vec<(String, i64, i64)>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT queue, requested_ms, accepted_ms FROM
                     (SELECT queue, requested_ms, accepted_ms FROM handovers
                      WHERE accepted_ms > $1 ORDER BY accepted_ms DESC LIMIT $2) recent
                 ORDER BY accepted_ms",
            )
            .bind(since_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("queue")?,
                        r.try_get("requested_ms")?,
                        r.try_get("accepted_ms")?,
                    ))
                })
                .collect()
        })
    }

    fn upsert_agent<'a>(&'a self, a: &'a AgentRecord, now_ms: i64) -> Fut<'a, AgentRecord> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "INSERT INTO agents (id, email, name, password_hash, created_ms, removed_ms,
                     queues, skills, role, max_chats)
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9)
                 ON CONFLICT (email) DO UPDATE SET name = excluded.name,
                     password_hash = excluded.password_hash, removed_ms = NULL,
                     queues = excluded.queues, skills = excluded.skills, role = excluded.role,
                     max_chats = excluded.max_chats,
                     managed_by = 'config'
                 RETURNING ",
                agent_columns!()
            ))
            .bind(a.id.0.clone())
            .bind(a.email.clone())
            .bind(a.name.clone())
            .bind(a.password_hash.clone())
            .bind(now_ms)
            .bind(json_list(&a.scope.queues))
            .bind(json_list(&a.scope.skills))
            .bind(a.role.as_str())
            .bind(a.max_chats.map(i64::from))
            .fetch_one(&self.write)
            .await?;
            agent_from(&row)
        })
    }

    fn agent_by_email<'a>(&'a self, email: &'a str) -> Fut<'a, Option<AgentRecord>> {
        Box::pin(async move {
            sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE email = $1 AND removed_ms IS NULL"
            ))
            .bind(email.to_owned())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(agent_from)
            .transpose()
        })
    }

    fn agents(&self) -> Fut<'_, Vec<AgentRecord>> {
        Box::pin(async move {
            sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE removed_ms IS NULL ORDER BY email"
            ))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(agent_from)
            .collect()
        })
    }

    fn agents_managed_by<'a>(&'a self, source: &'a str) -> Fut<'a, Vec<AgentRecord>> {
        Box::pin(async move {
            sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                " FROM agents WHERE removed_ms IS NULL AND managed_by = $1 ORDER BY email"
            ))
            .bind(source.to_owned())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(agent_from)
            .collect()
        })
    }

    fn set_managed_by<'a>(&'a self, id: &'a AgentId, source: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE agents SET managed_by = $2 WHERE id = $1")
                .bind(id.0.clone())
                .bind(source.to_owned())
                .execute(&self.write)
                .await?;
            Ok(())
        })
    }

    fn remove_agent<'a>(&'a self, id: &'a AgentId, now_ms: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            sqlx::query("UPDATE agents SET removed_ms = $2 WHERE id = $1")
                .bind(id.0.clone())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM agent_sessions WHERE agent_id = $1")
                .bind(id.0.clone())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM agent_presence WHERE agent_id = $1")
                .bind(id.0.clone())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_session<'a>(
        &'a self,
        token_hash: &'a str,
        agent: &'a AgentId,
        now_ms: i64,
        expires_ms: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            // Expired sessions are of no use to anyone; clear them as new ones come.
            sqlx::query("DELETE FROM agent_sessions WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO agent_sessions (token_hash, agent_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash.to_owned())
            .bind(agent.0.clone())
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn touch_session<'a>(
        &'a self,
        token_hash: &'a str,
        now_ms: i64,
        new_expires_ms: i64,
    ) -> Fut<'a, Option<Staff>> {
        Box::pin(async move {
            let row = sqlx::query(
                "UPDATE agent_sessions SET expires_ms = $3
                 WHERE token_hash = $1 AND expires_ms > $2
                   AND agent_id IN (SELECT id FROM agents WHERE removed_ms IS NULL)
                 RETURNING agent_id",
            )
            .bind(token_hash.to_owned())
            .bind(now_ms)
            .bind(new_expires_ms)
            .fetch_optional(&self.write)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let id: String = row.try_get("agent_id")?;
            let agent = sqlx::query(concat!(
                "SELECT ",
                agent_columns!(),
                ", away FROM agents WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
            agent
                .map(|r| {
                    let a = agent_from(&r)?;
                    Ok(Staff {
                        agent: a.as_ref(),
                        scope: a.scope,
                        role: a.role,
                        max_chats: a.max_chats,
                        away: r.try_get::<i64, _>("away")? != 0,
                    })
                })
                .transpose()
        })
    }

    fn delete_session<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<AgentId>> {
        Box::pin(async move {
            let row =
                sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1 RETURNING agent_id")
                    .bind(token_hash.to_owned())
                    .fetch_optional(&self.write)
                    .await?;
            row.map(|r| Ok(AgentId(r.try_get("agent_id")?))).transpose()
        })
    }

    fn delete_sessions_of<'a>(&'a self, agent: &'a AgentId) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM agent_sessions WHERE agent_id = $1")
                .bind(agent.0.clone())
                .execute(&self.write)
                .await?;
            Ok(())
        })
    }

    fn renew_presence<'a>(
        &'a self,
        connection: &'a str,
        agent: &'a AgentId,
        replica: &'a str,
        lease_until_ms: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO agent_presence (connection_id, agent_id, replica, lease_until_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (connection_id) DO UPDATE SET lease_until_ms = excluded.lease_until_ms",
            )
            .bind(connection.to_owned())
            .bind(agent.0.clone())
            .bind(replica.to_owned())
            .bind(lease_until_ms)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }

    fn drop_presence<'a>(&'a self, connection: &'a str, until_ms: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE agent_presence SET lease_until_ms = $2
                 WHERE connection_id = $1 AND lease_until_ms > $2",
            )
            .bind(connection.to_owned())
            .bind(until_ms)
            .execute(&self.write)
            .await?;
            // Leases long over are history.
            sqlx::query("DELETE FROM agent_presence WHERE lease_until_ms < $1")
                .bind(until_ms - 3_600_000)
                .execute(&self.write)
                .await?;
            Ok(())
        })
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            self.write.close().await;
            self.read.close().await;
            Ok(())
        })
    }

    fn agents_online(&self, now_ms: i64) -> Fut<'_, Vec<OnlineAgent>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT a.id, a.queues, a.skills, a.away, a.max_chats FROM agents a
                 WHERE a.removed_ms IS NULL AND a.id IN
                     (SELECT agent_id FROM agent_presence WHERE lease_until_ms > $1)
                 ORDER BY a.id",
            )
            .bind(now_ms)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(OnlineAgent {
                    id: AgentId(r.try_get("id")?),
                    scope: scope_from(r)?,
                    away: r.try_get::<i64, _>("away")? != 0,
                    max_chats: r
                        .try_get::<Option<i64>, _>("max_chats")?
                        .and_then(|n| u32::try_from(n).ok()),
                })
            })
            .collect()
        })
    }

    fn set_away<'a>(&'a self, agent: &'a AgentId, away: bool) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE agents SET away = $1 WHERE id = $2")
                .bind(i64::from(away))
                .bind(agent.0.clone())
                .execute(&self.write)
                .await?;
            Ok(())
        })
    }

    fn put_offer<'a>(&'a self, offer: &'a Offer) -> Fut<'a, Option<Offer>> {
        Box::pin(async move {
            let mut tx = self.write.begin().await?;
            // The chat is the offering agent's now, and stays so until this commits: a
            // commit that takes it away waits for the row (SQLite has one writer), and then
            // finds the offer to remove.
            let lock = if self.backend == "postgres" {
                " FOR UPDATE"
            } else {
                ""
            };
            let owner = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT agent_id, state FROM conversations WHERE id = $1{lock}"
            )))
            .bind(offer.conversation_id.0.clone())
            .fetch_optional(&mut *tx)
            .await?;
            let owns = match &owner {
                Some(r) => {
                    r.try_get::<Option<String>, _>("agent_id")?.as_deref()
                        == Some(offer.from.id.as_str())
                        && r.try_get::<String, _>("state")? == "agent_joined"
                }
                None => false,
            };
            if !owns {
                return Err(StoreError::Conflict);
            }
            let before = sqlx::query(
                "DELETE FROM transfer_offers WHERE conversation_id = $1
                 RETURNING conversation_id, from_agent, from_name, to_agent, note, created_ms",
            )
            .bind(offer.conversation_id.0.clone())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| offer_from(&r))
            .transpose()?;
            sqlx::query(
                "INSERT INTO transfer_offers (conversation_id, from_agent, from_name, to_agent, note, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(offer.conversation_id.0.clone())
            .bind(offer.from.id.0.clone())
            .bind(offer.from.name.clone())
            .bind(offer.to.0.clone())
            .bind(offer.note.clone())
            .bind(offer.created_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(before)
        })
    }

    fn take_offer_for<'a>(
        &'a self,
        conv: &'a ConversationId,
        to: &'a AgentId,
    ) -> Fut<'a, Option<Offer>> {
        Box::pin(async move {
            sqlx::query(
                "DELETE FROM transfer_offers WHERE conversation_id = $1 AND to_agent = $2
                 RETURNING conversation_id, from_agent, from_name, to_agent, note, created_ms",
            )
            .bind(conv.0.clone())
            .bind(to.0.clone())
            .fetch_optional(&self.write)
            .await?
            .map(|r| offer_from(&r))
            .transpose()
        })
    }

    fn take_offer<'a>(&'a self, conv: &'a ConversationId) -> Fut<'a, Option<Offer>> {
        Box::pin(async move {
            sqlx::query(
                "DELETE FROM transfer_offers WHERE conversation_id = $1
                 RETURNING conversation_id, from_agent, from_name, to_agent, note, created_ms",
            )
            .bind(conv.0.clone())
            .fetch_optional(&self.write)
            .await?
            .map(|r| offer_from(&r))
            .transpose()
        })
    }

    fn offers_to<'a>(&'a self, agent: &'a AgentId) -> Fut<'a, Vec<Offer>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT conversation_id, from_agent, from_name, to_agent, note, created_ms
                 FROM transfer_offers WHERE to_agent = $1 ORDER BY created_ms, conversation_id",
            )
            .bind(agent.0.clone())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(offer_from)
            .collect()
        })
    }

    fn leave_message<'a>(&'a self, m: &'a NewMessage, now_ms: i64) -> Fut<'a, i64> {
        Box::pin(async move {
            let row = sqlx::query(
                "INSERT INTO left_messages (conversation_id, name, email, text, page_url, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(m.conversation_id.0.clone())
            .bind(m.name.clone())
            .bind(m.email.clone())
            .bind(m.text.clone())
            .bind(m.page_url.clone())
            .bind(now_ms)
            .fetch_one(&self.write)
            .await?;
            Ok(row.try_get("id")?)
        })
    }

    fn left_messages(&self, include_done: bool, limit: u32) -> Fut<'_, Vec<LeftMessage>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, conversation_id, name, email, text, page_url, created_ms, done_by
                 FROM left_messages WHERE ($1 OR done_ms IS NULL)
                 ORDER BY created_ms DESC, id DESC LIMIT $2",
            )
            .bind(include_done)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(LeftMessage {
                        id: r.try_get("id")?,
                        conversation_id: ConversationId(r.try_get("conversation_id")?),
                        name: r.try_get("name")?,
                        email: r.try_get("email")?,
                        text: r.try_get("text")?,
                        page_url: r.try_get("page_url")?,
                        created_at: rfc3339_from_unix_ms(r.try_get("created_ms")?),
                        done_by: r.try_get("done_by")?,
                    })
                })
                .collect()
        })
    }

    fn mark_message_done<'a>(&'a self, id: i64, by: &'a str, now_ms: i64) -> Fut<'a, bool> {
        Box::pin(async move {
            let done =
                sqlx::query("UPDATE left_messages SET done_ms = $2, done_by = $3 WHERE id = $1")
                    .bind(id)
                    .bind(now_ms)
                    .bind(by.to_owned())
                    .execute(&self.write)
                    .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn rate<'a>(&'a self, r: &'a NewRating, now_ms: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO ratings (handover_id, conversation_id, agent_id, agent_name, stars, comment, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (handover_id) DO UPDATE SET stars = excluded.stars,
                     comment = excluded.comment, created_ms = excluded.created_ms",
            )
            .bind(r.handover_id)
            .bind(r.conversation_id.0.clone())
            .bind(r.agent.id.0.clone())
            .bind(r.agent.name.clone())
            .bind(i64::from(r.stars))
            .bind(r.comment.clone())
            .bind(now_ms)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }

    fn ratings(&self, limit: u32) -> Fut<'_, (u32, Option<f64>, Vec<Rating>)> {
        Box::pin(async move {
            let all = sqlx::query("SELECT COUNT(*) AS n, SUM(stars) AS total FROM ratings")
                .fetch_one(&self.read)
                .await?;
            let n = count(&all)?;
            let total: Option<i64> = all.try_get("total")?;
            let latest = sqlx::query(
                "SELECT conversation_id, agent_id, agent_name, stars, comment, created_ms
                 FROM ratings ORDER BY created_ms DESC, handover_id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(Rating {
                    conversation_id: ConversationId(r.try_get("conversation_id")?),
                    agent: baton_protocol::state::AgentRef {
                        id: AgentId(r.try_get("agent_id")?),
                        name: r.try_get("agent_name")?,
                    },
                    stars: u8::try_from(r.try_get::<i64, _>("stars")?).unwrap_or(0),
                    comment: r.try_get("comment")?,
                    rated_at: rfc3339_from_unix_ms(r.try_get("created_ms")?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let average = (n > 0).then(|| total.unwrap_or(0) as f64 / f64::from(n));
            Ok((n, average, latest))
        })
    }

    fn setting<'a>(&'a self, key: &'a str) -> Fut<'a, Option<(String, i64)>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT value, updated_ms FROM settings WHERE key = $1")
                .bind(key.to_owned())
                .fetch_optional(&self.read)
                .await?;
            row.map(|r| Ok((r.try_get("value")?, r.try_get("updated_ms")?)))
                .transpose()
        })
    }

    fn put_setting<'a>(&'a self, key: &'a str, value: &'a str, now_ms: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO settings (key, value, updated_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            )
            .bind(key.to_owned())
            .bind(value.to_owned())
            .bind(now_ms)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }

    fn bot_memory<'a>(&'a self, conv: &'a ConversationId) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT memory FROM bot_memory WHERE conversation_id = $1")
                .bind(conv.0.clone())
                .fetch_optional(&self.read)
                .await?;
            Ok(match row {
                Some(r) => Some(r.try_get("memory")?),
                None => None,
            })
        })
    }

    fn set_bot_memory<'a>(
        &'a self,
        conv: &'a ConversationId,
        memory: &'a str,
        now_ms: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO bot_memory (conversation_id, memory, updated_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (conversation_id) DO UPDATE
                 SET memory = excluded.memory, updated_ms = excluded.updated_ms",
            )
            .bind(conv.0.clone())
            .bind(memory.to_owned())
            .bind(now_ms)
            .execute(&self.write)
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_rows_number_their_placeholders_in_order() {
        assert_eq!(
            super::event_rows(2, 2, Some("$1")),
            "($1, $2, $3, $4, $5, $6, $7, $8), ($1, $9, $10, $11, $12, $13, $14, $15)"
        );
        assert_eq!(
            super::event_rows(1, 14, None),
            "($14, $15, $16, $17, $18, $19, $20)"
        );
    }

    #[test]
    fn sqlite_urls_keep_odd_paths_intact() {
        assert_eq!(
            super::sqlite_url("/tmp/a b/baton.sqlite3"),
            "sqlite:///tmp/a b/baton.sqlite3?mode=rwc"
        );
        assert_eq!(
            super::sqlite_url("x?y#z%.db"),
            "sqlite://x%3Fy%23z%25.db?mode=rwc"
        );
    }
}
