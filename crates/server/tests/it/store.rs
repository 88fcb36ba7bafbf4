//! The storage test suite, run against both backends: a SQLite file and a fresh PostgreSQL
//! database. Each check is a plain async fn over `&dyn Store`; `backend_suite!` runs every
//! one on each backend.

use baton_protocol::bot::{HandoverDirective, Routing};
use baton_protocol::decide::{self, Command, Context, View};
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState, EndedBy};
use baton_protocol::status::{Offload, OffloadState};
use baton_protocol::ws::{Event, EventBody, Role};
use baton_server::store::{
    AgentRecord, AgentRole, Capacity, Commit, NewConversation, NewRating, Offer, Scope, SqlStore,
    Store, StoreError,
};

use crate::harness::TestDb;

const T0: i64 = 1_795_186_800_000;

fn conv(n: &str) -> ConversationId {
    ConversationId(format!("c_{n}"))
}

async fn create(store: &dyn Store, n: &str) -> ConversationId {
    store
        .create_conversation(NewConversation {
            id: conv(n),
            visitor_id: VisitorId(format!("v_{n}")),
            credential_hash: Some(format!("hash_{n}")),
            now_ms: T0,
        })
        .await
        .unwrap();
    conv(n)
}

/// Decides `command` on the stored view and commits it, as the service does (no retry);
/// returns the events and the id of the handover row the commit created, if any.
async fn run(
    store: &dyn Store,
    id: &ConversationId,
    command: Command,
    now_ms: i64,
) -> Result<(Vec<Event>, Option<i64>), StoreError> {
    let before = store.conversation(id).await?.expect("conversation exists");
    let cx = Context {
        now_ms,
        offload: &Offload::open(),
        agents_online: 1,
    };
    let bodies = decide::decide(&before.view, &command, &cx).expect("decided");
    append(store, id, &before.view, bodies, now_ms).await
}

async fn append(
    store: &dyn Store,
    id: &ConversationId,
    view: &View,
    bodies: Vec<EventBody>,
    now_ms: i64,
) -> Result<(Vec<Event>, Option<i64>), StoreError> {
    append_limited(store, id, view, bodies, now_ms, None).await
}

/// [`append`], with an agent's limit of chats checked in the commit.
async fn append_limited(
    store: &dyn Store,
    id: &ConversationId,
    view: &View,
    bodies: Vec<EventBody>,
    now_ms: i64,
    capacity: Option<Capacity>,
) -> Result<(Vec<Event>, Option<i64>), StoreError> {
    let mut next = view.clone();
    let events: Vec<Event> = bodies
        .into_iter()
        .zip(view.head_seq + 1..)
        .map(|(body, seq)| Event {
            seq,
            ts: String::new(),
            body,
        })
        .collect();
    decide::replay(&mut next, &events);
    let handover = store
        .commit(&Commit {
            conversation: id.clone(),
            expected_head: view.head_seq,
            view: next,
            events: events.clone(),
            reply_to: None,
            now_ms,
            capacity,
        })
        .await?;
    Ok((events, handover))
}

fn say(text: &str, key: Option<&str>) -> Command {
    Command::VisitorMessage {
        text: text.into(),
        client_msg_id: key.map(ClientMsgId::from),
    }
}

fn ask(queue: &str) -> Command {
    Command::RequestHandover {
        directive: HandoverDirective {
            routing: Some(Routing {
                queue: Some(queue.into()),
                skill: None,
            }),
            message_to_agent: Some("note".into()),
            ..HandoverDirective::default()
        },
        page_url: Some("https://shop.example.com/".into()),
        locale: Some("de".into()),
    }
}

fn dana() -> AgentRef {
    AgentRef {
        id: AgentId::from("a_dana"),
        name: "Dana".into(),
    }
}

async fn appends_gap_free_and_refuses_a_stale_head(store: &dyn Store) {
    let id = create(store, "1").await;
    let empty = store.conversation(&id).await.unwrap().unwrap();
    run(store, &id, say("one", Some("k1")), T0).await.unwrap();
    run(store, &id, say("two", Some("k2")), T0).await.unwrap();
    // A writer that decided on the empty conversation is too late.
    let stale = append(
        store,
        &id,
        &empty.view,
        vec![EventBody::text(Role::Bot, "late")],
        T0,
    )
    .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    let events = store.events_after(&id, 0, 100).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.events_after(&id, 1, 100).await.unwrap().len(), 1);
    assert_eq!(store.events_after(&id, 0, 1).await.unwrap().len(), 1);
    let c = store.conversation(&id).await.unwrap().unwrap();
    assert_eq!((c.view.head_seq, c.view.last_visitor_seq), (2, 2));
    assert_eq!(c.last_visitor_text.as_deref(), Some("two"));
}

async fn idempotency_keys_are_per_author(store: &dyn Store) {
    let id = create(store, "2").await;
    run(store, &id, say("hello", Some("same")), T0)
        .await
        .unwrap();
    let stored = store
        .event_by_client_msg_id(&id, "visitor", &ClientMsgId::from("same"))
        .await
        .unwrap()
        .expect("stored under the visitor");
    assert_eq!(stored.seq, 1);
    assert!(
        store
            .event_by_client_msg_id(&id, "agent:a_dana", &ClientMsgId::from("same"))
            .await
            .unwrap()
            .is_none()
    );
    // The same key again from the visitor collides in the database itself.
    let view = store.conversation(&id).await.unwrap().unwrap().view;
    let again = append(
        store,
        &id,
        &view,
        vec![EventBody::Message {
            role: Role::Visitor,
            text: "hello".into(),
            client_msg_id: Some(ClientMsgId::from("same")),
            agent: None,
            buttons: vec![],
            image: None,
            attachment: None,
            custom: None,
        }],
        T0,
    )
    .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    // An agent may use the same key: it is another author.
    run(store, &id, ask("default"), T0).await.unwrap();
    run(
        store,
        &id,
        Command::Accept {
            agent: dana(),
            notice: None,
        },
        T0,
    )
    .await
    .unwrap();
    run(
        store,
        &id,
        Command::AgentMessage {
            agent: dana(),
            text: "hi".into(),
            client_msg_id: ClientMsgId::from("same"),
        },
        T0,
    )
    .await
    .unwrap();
}

async fn handover_rows_follow_the_events_and_the_queue_is_ordered(store: &dyn Store) {
    let ids = [
        create(store, "q1").await,
        create(store, "q2").await,
        create(store, "q3").await,
    ];
    for (i, id) in ids.iter().enumerate() {
        let (_, none) = run(store, id, say("help", None), T0).await.unwrap();
        assert_eq!(none, None, "a message creates no handover row");
        let (_, created) = run(store, id, ask("billing"), T0 + i as i64).await.unwrap();
        let stored = store
            .conversation(id)
            .await
            .unwrap()
            .unwrap()
            .handover
            .unwrap();
        assert_eq!(
            created,
            Some(stored.id),
            "the commit names the row it created"
        );
    }
    let other = create(store, "q4").await;
    run(store, &other, ask("sales"), T0).await.unwrap();

    assert_eq!(store.queue_length().await.unwrap(), 4);
    let order = store.queue_order().await.unwrap();
    assert_eq!(
        order,
        vec![
            (ids[0].clone(), "billing".into()),
            (ids[1].clone(), "billing".into()),
            (ids[2].clone(), "billing".into()),
            (other.clone(), "sales".into()),
        ]
    );
    let h = |c: &baton_server::store::Conversation| c.handover.clone().unwrap();
    let third = store.conversation(&ids[2]).await.unwrap().unwrap();
    assert_eq!(store.queue_position(h(&third).id).await.unwrap(), Some(3));
    let sales = store.conversation(&other).await.unwrap().unwrap();
    assert_eq!(store.queue_position(h(&sales).id).await.unwrap(), Some(1));
    assert_eq!(
        h(&third).page_url.as_deref(),
        Some("https://shop.example.com/")
    );
    assert_eq!(h(&third).locale.as_deref(), Some("de"));
    assert_eq!(h(&third).outcome, "queued");

    // The first is accepted: it leaves the queue, the others move up.
    run(
        store,
        &ids[0],
        Command::Accept {
            agent: dana(),
            notice: None,
        },
        T0 + 10,
    )
    .await
    .unwrap();
    assert_eq!(store.queue_position(h(&third).id).await.unwrap(), Some(2));
    let first = store.conversation(&ids[0]).await.unwrap().unwrap();
    assert_eq!(store.queue_position(h(&first).id).await.unwrap(), None);
    assert_eq!(
        (
            h(&first).outcome.as_str(),
            h(&first).accepted_ms,
            h(&first).agent_id
        ),
        ("accepted", Some(T0 + 10), Some(dana().id))
    );
    let waiting = store.waiting().await.unwrap();
    assert_eq!(
        waiting.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        // Oldest request first across queues (`other` asked first, in its own queue).
        vec![other.clone(), ids[1].clone(), ids[2].clone()]
    );
    assert_eq!(waiting[1].last_visitor_text.as_deref(), Some("help"));
    let mine = store.owned_by(&dana().id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, ids[0]);

    // Cancel and end close their rows too.
    run(store, &ids[1], Command::Cancel, T0 + 20).await.unwrap();
    run(store, &ids[0], Command::End { agent: dana() }, T0 + 30)
        .await
        .unwrap();
    let c1 = store.conversation(&ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (h(&c1).outcome.as_str(), h(&c1).ended_ms),
        ("cancelled", Some(T0 + 20))
    );
    let c0 = store.conversation(&ids[0]).await.unwrap().unwrap();
    assert_eq!(h(&c0).outcome, "ended");
    assert_eq!(
        c0.view.state,
        ConversationState::Ended { by: EndedBy::Agent }
    );
    assert!(store.owned_by(&dana().id).await.unwrap().is_empty());
    assert_eq!(store.queue_length().await.unwrap(), 2);
}

async fn every_state_is_stored_in_columns_and_read_back(store: &dyn Store) {
    let id = create(store, "s").await;
    let policy_closed = Offload {
        state: OffloadState::Closed,
        next_open_at: Some("2026-11-23T08:00:00+01:00".into()),
        ..Offload::open()
    };
    let steps: Vec<(Command, Option<&Offload>)> = vec![
        (say("hi", None), None),
        (ask("default"), None),
        (
            Command::Accept {
                agent: dana(),
                notice: None,
            },
            None,
        ),
        (Command::End { agent: dana() }, None),
        (say("again", None), None),
        (ask("default"), Some(&policy_closed)),
    ];
    for (command, policy) in steps {
        let before = store.conversation(&id).await.unwrap().unwrap();
        let open = Offload::open();
        let cx = Context {
            now_ms: T0 + 4 * 3_600_000,
            offload: policy.unwrap_or(&open),
            agents_online: 1,
        };
        let bodies = decide::decide(&before.view, &command, &cx).unwrap();
        let (events, _) = append(store, &id, &before.view, bodies, T0).await.unwrap();
        let mut expected = before.view.clone();
        decide::replay(&mut expected, &events);
        let after = store.conversation(&id).await.unwrap().unwrap();
        // Queue position and presence are live facts, not stored ones.
        let strip = |s: ConversationState| match s {
            ConversationState::Queued { .. } => ConversationState::Queued {
                position: None,
                agents_online: None,
            },
            other => other,
        };
        assert_eq!(
            strip(after.view.state.clone()),
            strip(expected.state.clone())
        );
        assert_eq!(after.view.head_seq, expected.head_seq);
        assert_eq!(after.view.last_request_seq, expected.last_request_seq);
    }
    let last = store.conversation(&id).await.unwrap().unwrap();
    assert_eq!(
        last.view.state,
        ConversationState::Closed {
            next_open_at: Some("2026-11-23T08:00:00+01:00".into())
        }
    );
}

async fn concurrent_writers_never_share_a_seq(store: &dyn Store) {
    let id = create(store, "race").await;
    let writers = (0..8).map(|w| {
        let id = id.clone();
        async move {
            for i in 0..10 {
                // The service's loop: read, decide, commit; decide again on a conflict.
                loop {
                    match run(
                        store,
                        &id,
                        say(&format!("w{w} m{i}"), Some(&format!("w{w}-{i}"))),
                        T0,
                    )
                    .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    });
    futures_util::future::join_all(writers).await;
    let events = store.events_after(&id, 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=80).collect::<Vec<_>>(),
        "80 messages, seqs 1..=80 with no gap and no repeat"
    );
}

async fn credentials_and_plain_senders(store: &dyn Store) {
    let id = create(store, "cred").await;
    let c = store
        .conversation_by_credential("hash_cred")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.has_credential), (id, true));
    assert!(
        store
            .conversation_by_credential("nope")
            .await
            .unwrap()
            .is_none()
    );
    let new = |n: &str| NewConversation {
        id: ConversationId(format!("c_{n}")),
        visitor_id: VisitorId::from("rasa-user"),
        credential_hash: None,
        now_ms: T0,
    };
    let a = store.conversation_for_sender(new("x")).await.unwrap();
    let b = store.conversation_for_sender(new("y")).await.unwrap();
    assert_eq!(a.id, b.id, "one conversation per sender");
    assert!(!a.has_credential);
    // A credential's visitor id is taken: a plain sender with it finds that conversation.
    let taken = store
        .conversation_for_sender(NewConversation {
            id: conv("z"),
            visitor_id: VisitorId::from("v_cred"),
            credential_hash: None,
            now_ms: T0,
        })
        .await
        .unwrap();
    assert!(taken.has_credential);
}

async fn sessions_slide_and_end(store: &dyn Store) {
    let rec = store
        .upsert_agent(
            &AgentRecord {
                id: AgentId::from("a_s"),
                email: "s@x".into(),
                name: "S".into(),
                password_hash: "h1".into(),
                scope: Scope {
                    queues: vec!["sales".into(), "billing, \"EU\"".into()],
                    skills: vec!["de".into()],
                },
                role: AgentRole::Supervisor,
                max_chats: Some(3),
            },
            T0,
        )
        .await
        .unwrap();
    store
        .create_session("tok", &rec.id, T0, T0 + 1000)
        .await
        .unwrap();
    assert_eq!(
        store
            .touch_session("tok", T0 + 500, T0 + 1500)
            .await
            .unwrap()
            .map(|a| (
                a.agent.name,
                a.scope.queues,
                a.scope.skills,
                a.role,
                a.max_chats
            )),
        Some((
            "S".into(),
            vec!["sales".into(), "billing, \"EU\"".into()],
            vec!["de".into()],
            AgentRole::Supervisor,
            Some(3)
        )),
        "the session brings what the agent serves, its role and its limit"
    );
    // Sliding: still alive after the first expiry, gone after the new one.
    assert!(
        store
            .touch_session("tok", T0 + 1200, T0 + 1500)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .touch_session("tok", T0 + 1600, T0 + 3000)
            .await
            .unwrap()
            .is_none()
    );

    store
        .create_session("t2", &rec.id, T0, T0 + 10_000)
        .await
        .unwrap();
    assert_eq!(
        store.delete_session("t2").await.unwrap(),
        Some(rec.id.clone())
    );
    assert!(
        store
            .touch_session("t2", T0, T0 + 1)
            .await
            .unwrap()
            .is_none()
    );

    store
        .create_session("t3", &rec.id, T0, T0 + 10_000)
        .await
        .unwrap();
    store.remove_agent(&rec.id, T0).await.unwrap();
    assert!(
        store
            .touch_session("t3", T0, T0 + 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.agent_by_email("s@x").await.unwrap().is_none());
    // Adding it again brings it back, with the same id.
    let back = store
        .upsert_agent(
            &AgentRecord {
                id: AgentId::from("a_other"),
                email: "s@x".into(),
                name: "S2".into(),
                password_hash: "h2".into(),
                scope: Scope::default(),
                role: AgentRole::Agent,
                max_chats: None,
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        (back.id, back.name.as_str(), back.scope, back.role),
        (rec.id, "S2", Scope::default(), AgentRole::Agent),
        "an update replaces the queues and the role too"
    );
    assert_eq!(store.agents().await.unwrap().len(), 1);
}

async fn presence_leases_expire(store: &dyn Store) {
    for (id, email, queues) in [
        ("a_p1", "p1@x", vec![]),
        ("a_p2", "p2@x", vec!["sales".into()]),
    ] {
        store
            .upsert_agent(
                &AgentRecord {
                    id: AgentId::from(id),
                    email: email.into(),
                    name: id.into(),
                    password_hash: "h".into(),
                    scope: Scope {
                        queues,
                        skills: vec![],
                    },
                    role: AgentRole::Agent,
                    max_chats: None,
                },
                T0,
            )
            .await
            .unwrap();
    }
    store
        .renew_presence("k1", &AgentId::from("a_p1"), "r1", T0 + 30_000)
        .await
        .unwrap();
    store
        .renew_presence("k2", &AgentId::from("a_p1"), "r2", T0 + 30_000)
        .await
        .unwrap();
    store
        .renew_presence("k3", &AgentId::from("a_p2"), "r1", T0 + 10_000)
        .await
        .unwrap();
    let online = |at| async move {
        let list = store.agents_online(at).await.unwrap();
        list.into_iter()
            .map(|a| format!("{}:{}", a.id.as_str(), a.scope.queues.join("+")))
            .collect::<Vec<_>>()
    };
    assert_eq!(online(T0).await, ["a_p1:", "a_p2:sales"], "distinct agents");
    assert_eq!(online(T0 + 20_000).await, ["a_p1:"], "a lease ran out");
    store
        .renew_presence("k3", &AgentId::from("a_p2"), "r1", T0 + 50_000)
        .await
        .unwrap();
    assert_eq!(online(T0 + 20_000).await.len(), 2, "renewed");
    // Closed with a grace period: online until it is over, never longer than the lease.
    store.drop_presence("k3", T0 + 25_000).await.unwrap();
    assert_eq!(
        online(T0 + 20_000).await.len(),
        2,
        "within the grace period"
    );
    assert_eq!(
        online(T0 + 25_000).await,
        ["a_p1:"],
        "the grace period is over"
    );
    store.drop_presence("k2", T0 + 90_000).await.unwrap();
    assert_eq!(
        online(T0 + 31_000).await,
        Vec::<String>::new(),
        "no longer than the lease"
    );
}

fn sam() -> AgentRef {
    AgentRef {
        id: AgentId::from("a_sam"),
        name: "Sam".into(),
    }
}

/// Decides `command` and commits it with an agent's limit of chats, as an accept does.
async fn run_limited(
    store: &dyn Store,
    id: &ConversationId,
    command: Command,
    capacity: Capacity,
) -> Result<(), StoreError> {
    let before = store.conversation(id).await?.expect("conversation exists");
    let cx = Context {
        now_ms: T0,
        offload: &Offload::open(),
        agents_online: 1,
    };
    let bodies = decide::decide(&before.view, &command, &cx).expect("decided");
    append_limited(store, id, &before.view, bodies, T0, Some(capacity))
        .await
        .map(drop)
}

async fn limits_away_offers_and_transfers(store: &dyn Store) {
    for a in [dana(), sam()] {
        store
            .upsert_agent(
                &AgentRecord {
                    id: a.id.clone(),
                    email: format!("{}@x", a.name),
                    name: a.name.clone(),
                    password_hash: "h".into(),
                    scope: Scope::default(),
                    role: AgentRole::Agent,
                    max_chats: Some(2),
                },
                T0,
            )
            .await
            .unwrap();
    }
    let ids = [
        create(store, "l1").await,
        create(store, "l2").await,
        create(store, "l3").await,
    ];
    let limit = |agent: &AgentRef| Capacity {
        agent: agent.id.clone(),
        limit: 2,
    };
    let accept = |agent: AgentRef| Command::Accept {
        agent,
        notice: None,
    };
    for id in &ids {
        run(store, id, ask("default"), T0).await.unwrap();
    }
    // Dana takes two; the third is one too many, refused in the commit itself.
    for id in &ids[..2] {
        run_limited(store, id, accept(dana()), limit(&dana()))
            .await
            .unwrap();
    }
    let third = run_limited(store, &ids[2], accept(dana()), limit(&dana())).await;
    assert!(matches!(third, Err(StoreError::Full(2))), "{third:?}");
    assert!(
        matches!(
            store
                .conversation(&ids[2])
                .await
                .unwrap()
                .unwrap()
                .view
                .state,
            ConversationState::Queued { .. }
        ),
        "nothing was written"
    );
    let mut loads = store.agent_loads().await.unwrap();
    loads.sort();
    assert_eq!(loads, [(dana().id, 2)]);
    assert_eq!(store.live_chats().await.unwrap().len(), 2);

    // Away is kept with the agent, and presence reads it.
    store
        .renew_presence("k_d", &dana().id, "r1", T0 + 30_000)
        .await
        .unwrap();
    store.set_away(&dana().id, true).await.unwrap();
    let online = store.agents_online(T0).await.unwrap();
    assert_eq!(
        online
            .iter()
            .map(|a| (a.id.as_str(), a.away, a.max_chats))
            .collect::<Vec<_>>(),
        [("a_dana", true, Some(2))]
    );
    store.set_away(&dana().id, false).await.unwrap();
    assert!(!store.agents_online(T0).await.unwrap()[0].away);

    // An offer to Sam, replaced by one to Dana's colleague again, taken once.
    let offer = |to: &AgentRef, note: &str| Offer {
        conversation_id: ids[0].clone(),
        from: dana(),
        to: to.id.clone(),
        note: Some(note.into()),
        created_ms: T0,
    };
    assert_eq!(
        store.put_offer(&offer(&sam(), "first")).await.unwrap(),
        None
    );
    // Only the agent who has the chat offers it: Dana does not have the third one.
    let not_hers = Offer {
        conversation_id: ids[2].clone(),
        ..offer(&sam(), "x")
    };
    assert!(matches!(
        store.put_offer(&not_hers).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .take_offer_for(&ids[0], &dana().id)
            .await
            .unwrap()
            .is_none(),
        "an offer is taken only by the agent it is made to"
    );
    let replaced = store.put_offer(&offer(&sam(), "VIP")).await.unwrap();
    assert_eq!(replaced.map(|o| o.note), Some(Some("first".into())));
    assert_eq!(
        store.offers_to(&sam().id).await.unwrap(),
        [offer(&sam(), "VIP")]
    );
    assert_eq!(
        store.take_offer(&ids[0]).await.unwrap(),
        Some(offer(&sam(), "VIP"))
    );
    assert_eq!(store.take_offer(&ids[0]).await.unwrap(), None, "taken once");
    assert!(store.offers_to(&sam().id).await.unwrap().is_empty());

    // Sam takes the chat over: the handover row names him, and his load counts it.
    let to_sam = Command::Transfer {
        from: dana(),
        to: Some(sam()),
        queue: None,
        note: Some("VIP".into()),
        notice: "Dana has handed your chat to Sam.".into(),
    };
    run_limited(store, &ids[0], to_sam, limit(&sam()))
        .await
        .unwrap();
    let c = store.conversation(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        c.view.state,
        ConversationState::AgentJoined { agent: sam() }
    );
    assert_eq!(c.handover.unwrap().agent_id, Some(sam().id));
    let mut loads = store.agent_loads().await.unwrap();
    loads.sort();
    assert_eq!(loads, [(dana().id, 1), (sam().id, 1)]);

    // Dana hands her other chat back to another queue: it waits there, before later
    // requests (its request's place), and needs no skill there.
    let later = create(store, "l4").await;
    run(store, &later, ask("billing"), T0 + 60_000)
        .await
        .unwrap();
    run(
        store,
        &ids[1],
        Command::Transfer {
            from: dana(),
            to: None,
            queue: Some("billing".into()),
            note: None,
            notice: "Dana has passed your chat on.".into(),
        },
        T0 + 120_000,
    )
    .await
    .unwrap();
    let c = store.conversation(&ids[1]).await.unwrap().unwrap();
    assert!(matches!(c.view.state, ConversationState::Queued { .. }));
    let h = c.handover.unwrap();
    assert_eq!(
        (h.queue.as_str(), h.agent_id, h.outcome.as_str()),
        ("billing", None, "queued")
    );
    let billing: Vec<ConversationId> = store
        .queue_order()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, q)| q == "billing")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(billing, [ids[1].clone(), later]);
    assert_eq!(store.agent_loads().await.unwrap(), [(sam().id, 1)]);
}

async fn ratings_replace_and_average(store: &dyn Store) {
    let (a, b) = (create(store, "r1").await, create(store, "r2").await);
    let (none, average, latest) = store.ratings(10).await.unwrap();
    assert_eq!((none, average, latest.len()), (0, None, 0));
    let rating =
        |handover_id, conversation_id: &ConversationId, stars, comment: Option<&str>| NewRating {
            handover_id,
            conversation_id: conversation_id.clone(),
            agent: dana(),
            stars,
            comment: comment.map(str::to_owned),
        };
    store.rate(&rating(1, &a, 2, None), T0).await.unwrap();
    store
        .rate(&rating(2, &b, 5, Some("Kind")), T0 + 1_000)
        .await
        .unwrap();
    // The same chat rated again replaces its rating.
    store
        .rate(&rating(1, &a, 4, Some("Better")), T0 + 2_000)
        .await
        .unwrap();
    let (n, average, latest) = store.ratings(10).await.unwrap();
    assert_eq!(n, 2);
    assert_eq!(average, Some(4.5));
    assert_eq!(
        latest
            .iter()
            .map(|r| (r.conversation_id.clone(), r.stars, r.comment.clone()))
            .collect::<Vec<_>>(),
        [
            (a.clone(), 4, Some("Better".to_owned())),
            (b.clone(), 5, Some("Kind".to_owned()))
        ],
        "newest first"
    );
    assert_eq!(latest[0].agent, dana());
    assert_eq!(
        store.ratings(1).await.unwrap().2.len(),
        1,
        "the limit holds"
    );
}

macro_rules! backend_suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("suite.sqlite3");
                    let store = SqlStore::open(path.to_str().unwrap(), 4).await.unwrap();
                    assert_eq!(store.backend(), "sqlite");
                    super::$check(&store).await;
                    store.close().await.unwrap();
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let db = TestDb::create().await;
                    let store = SqlStore::open(&db.url, 4).await.unwrap();
                    assert_eq!(store.backend(), "postgres");
                    super::$check(&store).await;
                    store.close().await.unwrap();
                    db.drop_db().await;
                }
            )*
        }
    };
}

backend_suite!(
    appends_gap_free_and_refuses_a_stale_head,
    idempotency_keys_are_per_author,
    handover_rows_follow_the_events_and_the_queue_is_ordered,
    every_state_is_stored_in_columns_and_read_back,
    concurrent_writers_never_share_a_seq,
    credentials_and_plain_senders,
    sessions_slide_and_end,
    presence_leases_expire,
    limits_away_offers_and_transfers,
    ratings_replace_and_average,
);

#[tokio::test]
async fn a_skeleton_database_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE conversations (id TEXT)")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let err = SqlStore::open(path.to_str().unwrap(), 1)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("walking-skeleton"), "{err}");
}
