//! Schema migrations, one list per backend, applied in order at start. `baton_migrations`
//! records which ran. Append only: never edit a migration that has shipped.
//!
//! The two lists describe the same schema; they differ only in column types (SQLite's
//! `INTEGER` is 64-bit, PostgreSQL needs `BIGINT`) and in how a row id is generated.

/// SQLite.
pub const SQLITE: &[&str] = &[
    // 1: agents, sessions, presence, conversations, handover requests, events.
    "CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        removed_ms INTEGER
    );
    CREATE TABLE agent_sessions (
        token_hash TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX agent_sessions_by_agent ON agent_sessions(agent_id);
    CREATE TABLE agent_presence (
        connection_id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        replica TEXT NOT NULL,
        lease_until_ms INTEGER NOT NULL
    );
    CREATE INDEX agent_presence_by_lease ON agent_presence(lease_until_ms);
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        visitor_id TEXT NOT NULL UNIQUE,
        credential_hash TEXT UNIQUE,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        head_seq INTEGER NOT NULL,
        last_visitor_seq INTEGER NOT NULL,
        last_request_seq INTEGER NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT,
        ended_by TEXT,
        next_open_at TEXT,
        agent_id TEXT,
        agent_name TEXT,
        handover_id INTEGER,
        last_visitor_text TEXT
    );
    CREATE INDEX conversations_by_agent ON conversations(agent_id, state);
    CREATE TABLE handovers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        request_seq INTEGER NOT NULL,
        queue TEXT NOT NULL,
        skill TEXT,
        reason TEXT NOT NULL,
        reason_text TEXT,
        message_to_agent TEXT,
        page_url TEXT,
        requested_ms INTEGER NOT NULL,
        accepted_ms INTEGER,
        ended_ms INTEGER,
        agent_id TEXT,
        outcome TEXT NOT NULL
    );
    CREATE INDEX handovers_waiting ON handovers(queue, requested_ms, id) WHERE outcome = 'queued';
    CREATE INDEX handovers_by_conversation ON handovers(conversation_id, id);
    CREATE TABLE events (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq INTEGER NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        author TEXT,
        client_msg_id TEXT,
        reply_to INTEGER,
        body TEXT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX events_idempotency ON events(conversation_id, author, client_msg_id)
        WHERE client_msg_id IS NOT NULL;
    CREATE INDEX events_replies ON events(conversation_id, reply_to) WHERE reply_to IS NOT NULL;",
    // 2: the slots a bot collected, with the handover; the built-in bot's memory.
    "ALTER TABLE handovers ADD COLUMN slots TEXT;
    CREATE TABLE bot_memory (
        conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
        memory TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    );",
    // 3: what each agent serves (JSON arrays of queue and skill names) and its role.
    "ALTER TABLE agents ADD COLUMN queues TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE agents ADD COLUMN skills TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent';",
    // 4: settings a supervisor changes at run time (the offloading switch).
    "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    );",
    // 5: recent acceptances, for estimated waits.
    "CREATE INDEX handovers_accepted ON handovers(accepted_ms) WHERE accepted_ms IS NOT NULL;",
    // 6: messages visitors leave for agents while nobody can chat.
    "CREATE TABLE left_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        text TEXT NOT NULL,
        page_url TEXT,
        created_ms INTEGER NOT NULL,
        done_ms INTEGER,
        done_by TEXT
    );
    CREATE INDEX left_messages_open ON left_messages(created_ms) WHERE done_ms IS NULL;",
    // 7: where an agent account is managed from: `config` or `cli` (`baton-server agent`).
    "ALTER TABLE agents ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'config';",
    // 8: the language of the visitor's widget, for the queue's texts and the console.
    "ALTER TABLE handovers ADD COLUMN locale TEXT;",
    // 9: an agent's own limit of chats at once (NULL: the site's).
    "ALTER TABLE agents ADD COLUMN max_chats INTEGER;",
    // 10: when a chat last entered its queue, if not at its request (an agent left).
    "ALTER TABLE handovers ADD COLUMN queued_ms BIGINT;",
    // 11: how far the visitor and the agent have read a conversation ("Seen").
    "ALTER TABLE conversations ADD COLUMN visitor_read_seq BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN agent_read_seq BIGINT NOT NULL DEFAULT 0;",
    // 12: an agent's own "away"; chats offered by one agent to another.
    "ALTER TABLE agents ADD COLUMN away INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE transfer_offers (
        conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
        from_agent TEXT NOT NULL,
        from_name TEXT NOT NULL,
        to_agent TEXT NOT NULL,
        note TEXT,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX transfer_offers_to ON transfer_offers(to_agent);",
    // 13: visitors' ratings of agent chats, one per handover.
    "CREATE TABLE ratings (
        handover_id BIGINT NOT NULL PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        stars INTEGER NOT NULL,
        comment TEXT,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX ratings_by_time ON ratings(created_ms);",
];

/// PostgreSQL.
pub const POSTGRES: &[&str] = &[
    // 1: as SQLITE[0].
    "CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        removed_ms BIGINT
    );
    CREATE TABLE agent_sessions (
        token_hash TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX agent_sessions_by_agent ON agent_sessions(agent_id);
    CREATE TABLE agent_presence (
        connection_id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        replica TEXT NOT NULL,
        lease_until_ms BIGINT NOT NULL
    );
    CREATE INDEX agent_presence_by_lease ON agent_presence(lease_until_ms);
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        visitor_id TEXT NOT NULL UNIQUE,
        credential_hash TEXT UNIQUE,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        head_seq BIGINT NOT NULL,
        last_visitor_seq BIGINT NOT NULL,
        last_request_seq BIGINT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT,
        ended_by TEXT,
        next_open_at TEXT,
        agent_id TEXT,
        agent_name TEXT,
        handover_id BIGINT,
        last_visitor_text TEXT
    );
    CREATE INDEX conversations_by_agent ON conversations(agent_id, state);
    CREATE TABLE handovers (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        request_seq BIGINT NOT NULL,
        queue TEXT NOT NULL,
        skill TEXT,
        reason TEXT NOT NULL,
        reason_text TEXT,
        message_to_agent TEXT,
        page_url TEXT,
        requested_ms BIGINT NOT NULL,
        accepted_ms BIGINT,
        ended_ms BIGINT,
        agent_id TEXT,
        outcome TEXT NOT NULL
    );
    CREATE INDEX handovers_waiting ON handovers(queue, requested_ms, id) WHERE outcome = 'queued';
    CREATE INDEX handovers_by_conversation ON handovers(conversation_id, id);
    CREATE TABLE events (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq BIGINT NOT NULL,
        ts_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        author TEXT,
        client_msg_id TEXT,
        reply_to BIGINT,
        body TEXT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    );
    CREATE UNIQUE INDEX events_idempotency ON events(conversation_id, author, client_msg_id)
        WHERE client_msg_id IS NOT NULL;
    CREATE INDEX events_replies ON events(conversation_id, reply_to) WHERE reply_to IS NOT NULL;",
    // 2: as SQLITE[1].
    "ALTER TABLE handovers ADD COLUMN slots TEXT;
    CREATE TABLE bot_memory (
        conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
        memory TEXT NOT NULL,
        updated_ms BIGINT NOT NULL
    );",
    // 3: as SQLITE[2].
    "ALTER TABLE agents ADD COLUMN queues TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE agents ADD COLUMN skills TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent';",
    // 4: as SQLITE[3].
    "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ms BIGINT NOT NULL
    );",
    // 5: as SQLITE[4].
    "CREATE INDEX handovers_accepted ON handovers(accepted_ms) WHERE accepted_ms IS NOT NULL;",
    // 6: as SQLITE[5].
    "CREATE TABLE left_messages (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        text TEXT NOT NULL,
        page_url TEXT,
        created_ms BIGINT NOT NULL,
        done_ms BIGINT,
        done_by TEXT
    );
    CREATE INDEX left_messages_open ON left_messages(created_ms) WHERE done_ms IS NULL;",
    // 7: as SQLITE[6].
    "ALTER TABLE agents ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'config';",
    // 8: as SQLITE[7].
    "ALTER TABLE handovers ADD COLUMN locale TEXT;",
    // 9: an agent's own limit of chats at once (NULL: the site's).
    "ALTER TABLE agents ADD COLUMN max_chats INTEGER;",
    // 10: when a chat last entered its queue, if not at its request (an agent left).
    "ALTER TABLE handovers ADD COLUMN queued_ms BIGINT;",
    // 11: how far the visitor and the agent have read a conversation ("Seen").
    "ALTER TABLE conversations ADD COLUMN visitor_read_seq BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN agent_read_seq BIGINT NOT NULL DEFAULT 0;",
    // 12: an agent's own "away"; chats offered by one agent to another.
    "ALTER TABLE agents ADD COLUMN away INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE transfer_offers (
        conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
        from_agent TEXT NOT NULL,
        from_name TEXT NOT NULL,
        to_agent TEXT NOT NULL,
        note TEXT,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX transfer_offers_to ON transfer_offers(to_agent);",
    // 13: visitors' ratings of agent chats, one per handover.
    "CREATE TABLE ratings (
        handover_id BIGINT NOT NULL PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        stars INTEGER NOT NULL,
        comment TEXT,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX ratings_by_time ON ratings(created_ms);",
];

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_migrations() {
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
        // Same tables and indexes, in the same order.
        let names = |sql: &str| {
            sql.split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .filter(|w| w[0] == "CREATE" || (w[0] == "UNIQUE" && w[1] == "INDEX"))
                .map(|w| w.join(" "))
                .collect::<Vec<_>>()
        };
        for (s, p) in super::SQLITE.iter().zip(super::POSTGRES) {
            assert_eq!(names(s), names(p));
        }
    }
}
