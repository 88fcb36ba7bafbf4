//! The decider and `apply`, as reviewable snapshots:
//!
//! - `tests/snapshots/decisions.txt`: every command in every state, under each offloading
//!   situation, with the events it decides or the refusal;
//! - `tests/snapshots/replays.txt`: event logs replayed through `apply`, with the state after
//!   each event.
//!
//! Run with `BATON_BLESS=1` to rewrite them after an intended change, then review the diff.

use baton_protocol::bot::{BotMessage, Button, HandoverDirective, HandoverReason, Routing};
use baton_protocol::decide::{self, Applied, Command, Context, Refusal, View};
use baton_protocol::ids::{AgentId, ClientMsgId};
use baton_protocol::state::{AgentRef, ConversationState, EndedBy};
use baton_protocol::status::{NoAgentsPolicy, Offload, OffloadState};
use baton_protocol::ws::{ErrorCode, Event, EventBody, Role};

// Friday 2026-11-20, 15:00 UTC.
const NOW: i64 = 1_795_186_800_000;

fn dana() -> AgentRef {
    AgentRef {
        id: AgentId::from("a_1"),
        name: "Dana".into(),
    }
}

fn sam() -> AgentRef {
    AgentRef {
        id: AgentId::from("a_2"),
        name: "Sam".into(),
    }
}

fn snapshot(name: &str, actual: &str) {
    let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("BATON_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} exists; run with BATON_BLESS=1 to create it"));
    assert_eq!(
        actual, expected,
        "{name} changed; review and re-bless with BATON_BLESS=1"
    );
}

/// A view in each state, as a log would leave it: the visitor wrote at seq 1 and asked for
/// a person at seq 2 (or, "written since", wrote again at seq 4 after asking).
fn views() -> Vec<(&'static str, View)> {
    let v = |state, last_request_seq, last_visitor_seq| View {
        state,
        head_seq: 5,
        last_visitor_seq,
        last_request_seq,
    };
    let closed = || ConversationState::Closed {
        next_open_at: Some("2026-11-23T08:00:00+01:00".into()),
    };
    vec![
        ("bot", v(ConversationState::Bot, 0, 1)),
        (
            "queued",
            v(
                ConversationState::Queued {
                    position: None,
                    agents_online: Some(true),
                },
                2,
                1,
            ),
        ),
        (
            "agent_joined(Dana)",
            v(ConversationState::AgentJoined { agent: dana() }, 2, 1),
        ),
        (
            "ended",
            v(ConversationState::Ended { by: EndedBy::Agent }, 2, 4),
        ),
        ("closed, nothing said since", v(closed(), 2, 1)),
        ("closed, written since", v(closed(), 2, 4)),
        (
            "disabled, nothing said since",
            v(ConversationState::Disabled, 2, 1),
        ),
        (
            "disabled, written since",
            v(ConversationState::Disabled, 2, 4),
        ),
        (
            "unavailable, nothing said since",
            v(ConversationState::Unavailable, 2, 1),
        ),
    ]
}

fn commands() -> Vec<(&'static str, Command)> {
    vec![
        (
            "visitor says hi",
            Command::VisitorMessage {
                text: " hi ".into(),
                client_msg_id: Some(ClientMsgId::from("m1")),
            },
        ),
        (
            "bot answers",
            Command::BotAnswer {
                items: vec![
                    BotMessage {
                        text: Some("Pick one".into()),
                        buttons: Some(vec![Button {
                            title: "Billing".into(),
                            payload: "/billing".into(),
                        }]),
                        ..BotMessage::default()
                    },
                    BotMessage::default(),
                ],
            },
        ),
        (
            "bot unreachable",
            Command::BotUnavailable {
                notice: "The assistant cannot answer.".into(),
            },
        ),
        (
            "request (billing)",
            Command::RequestHandover {
                directive: HandoverDirective {
                    message_to_agent: Some("note".into()),
                    routing: Some(Routing {
                        queue: Some("billing".into()),
                        skill: None,
                    }),
                    ..HandoverDirective::default()
                },
                page_url: Some("https://shop.example.com/".into()),
                locale: Some("de".into()),
            },
        ),
        ("cancel", Command::Cancel),
        (
            "Dana accepts",
            Command::Accept {
                agent: dana(),
                notice: None,
            },
        ),
        (
            "Sam accepts",
            Command::Accept {
                agent: sam(),
                notice: None,
            },
        ),
        (
            "Sam accepts (notice)",
            Command::Accept {
                agent: sam(),
                notice: Some("Sam from billing will help you.".into()),
            },
        ),
        (
            "Dana writes",
            Command::AgentMessage {
                agent: dana(),
                text: "Hello".into(),
                client_msg_id: ClientMsgId::from("a1"),
            },
        ),
        ("Dana ends", Command::End { agent: dana() }),
        (
            "timed out",
            Command::QueueTimeout {
                notice: "Nobody could take your chat in time.".into(),
            },
        ),
        (
            "Dana gone",
            Command::AgentGone {
                agent: dana().id,
                notice: "Dana has left the chat.".into(),
                end: false,
            },
        ),
        (
            "Dana gone (end)",
            Command::AgentGone {
                agent: dana().id,
                notice: "Dana has left the chat.".into(),
                end: true,
            },
        ),
        (
            "Dana hands to Sam (note)",
            Command::Transfer {
                from: dana(),
                to: Some(sam()),
                queue: None,
                note: Some(" VIP ".into()),
                notice: "Dana has handed your chat to Sam.".into(),
            },
        ),
        (
            "Dana hands to billing",
            Command::Transfer {
                from: dana(),
                to: None,
                queue: Some(" billing ".into()),
                note: None,
                notice: "Dana has passed your chat on.".into(),
            },
        ),
        (
            "Dana hands to herself",
            Command::Transfer {
                from: dana(),
                to: Some(dana()),
                queue: None,
                note: None,
                notice: String::new(),
            },
        ),
        (
            "Sam hands to billing",
            Command::Transfer {
                from: sam(),
                to: None,
                queue: Some("billing".into()),
                note: None,
                notice: String::new(),
            },
        ),
        ("Baton ends", Command::EndBySystem),
        ("unqueue", Command::Unqueue),
    ]
}

fn describe(r: &Result<Vec<EventBody>, Refusal>) -> String {
    match r {
        Err(Refusal { code, message }) => {
            format!(
                "refused {}: {message}",
                serde_json::to_string(code).unwrap()
            )
        }
        Ok(events) if events.is_empty() => "(nothing: already done)".into(),
        Ok(events) => events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
            .join("\n      "),
    }
}

#[test]
fn decision_table_matches_snapshot() {
    // The server works out the situation (switch, hours in their zone) before deciding.
    let office = Offload {
        state: OffloadState::Closed,
        next_open_at: Some("2026-11-23T08:00:00+01:00".into()),
        when_no_agents: NoAgentsPolicy::Queue,
    };
    let open = Offload::open();
    let off = Offload {
        state: OffloadState::Disabled,
        ..Offload::open()
    };
    let strict = Offload {
        when_no_agents: NoAgentsPolicy::Unavailable,
        ..Offload::open()
    };
    let contexts = [
        ("open, 1 agent online", &open, 1),
        ("open, nobody online", &open, 0),
        ("open, nobody online, policy unavailable", &strict, 0),
        ("closed (16:00 at +01:00, hours 08-15)", &office, 1),
        ("disabled", &off, 1),
    ];
    let mut out = String::from(
        "# state × command → events or refusal. Generated by tests/it/decide.rs.\n\
         # Only `request` and `unqueue` depend on the offloading situation, so the other\n\
         # commands are listed once, under the first situation.\n",
    );
    for (ci, (situation, offload, online)) in contexts.iter().enumerate() {
        let cx = Context {
            now_ms: NOW,
            offload,
            agents_online: *online,
        };
        out.push_str(&format!("\n## {situation}\n"));
        for (name, view) in views() {
            out.push_str(&format!("\n[{name}]\n"));
            for (label, command) in commands() {
                if ci > 0 && !matches!(command, Command::RequestHandover { .. } | Command::Unqueue)
                {
                    continue;
                }
                let r = decide::decide(&view, &command, &cx);
                out.push_str(&format!("  {label:<18} → {}\n", describe(&r)));
            }
        }
    }
    snapshot("decisions.txt", &out);
}

fn ev(seq: u64, body: EventBody) -> Event {
    Event {
        seq,
        ts: String::new(),
        body,
    }
}

fn requested(reason: HandoverReason) -> EventBody {
    EventBody::HandoverRequested {
        reason,
        reason_text: None,
        message_to_agent: None,
        queue: Some("default".into()),
        skill: None,
        page_url: None,
        slots: vec![],
        locale: None,
    }
}

fn outcome(state: ConversationState) -> EventBody {
    EventBody::HandoverOutcome { outcome: state }
}

fn queued() -> ConversationState {
    ConversationState::Queued {
        position: None,
        agents_online: Some(true),
    }
}

#[test]
fn replayed_logs_match_snapshot() {
    let logs: Vec<(&str, Vec<Event>)> = vec![
        (
            "bot → person → agent → ended → bot",
            vec![
                ev(1, EventBody::text(Role::Visitor, "hi")),
                ev(2, EventBody::text(Role::Bot, "Hello")),
                ev(3, requested(HandoverReason::UserRequest)),
                ev(4, outcome(queued())),
                ev(5, EventBody::AgentJoined { agent: dana() }),
                ev(6, EventBody::text(Role::Agent, "Hi, I'm Dana")),
                ev(7, EventBody::ChatEnded { by: EndedBy::Agent }),
                ev(8, EventBody::ReturnedToBot),
            ],
        ),
        (
            "closed, then cancelled after a second try",
            vec![
                ev(1, requested(HandoverReason::UserRequest)),
                ev(
                    2,
                    outcome(ConversationState::Closed {
                        next_open_at: Some("2026-11-23T08:00:00+01:00".into()),
                    }),
                ),
                ev(3, requested(HandoverReason::BotCannotHandle)),
                ev(4, outcome(queued())),
                ev(5, EventBody::HandoverCancelled),
            ],
        ),
        (
            "a replay that overlaps, an unknown event, and a late one",
            vec![
                ev(1, requested(HandoverReason::Policy)),
                ev(2, outcome(ConversationState::Disabled)),
                ev(2, outcome(ConversationState::Disabled)),
                ev(1, requested(HandoverReason::Policy)),
                ev(3, EventBody::Unknown),
                ev(4, EventBody::AgentJoined { agent: dana() }),
            ],
        ),
    ];
    let mut out =
        String::from("# event log → state after each event. Generated by tests/it/decide.rs.\n");
    for (name, events) in logs {
        out.push_str(&format!("\n[{name}]\n"));
        let mut view = View::default();
        for e in &events {
            let applied = decide::apply(&mut view, e);
            let note = match applied {
                Applied::Changed => String::new(),
                Applied::Duplicate => "  (duplicate, ignored)".into(),
                Applied::Rejected(r) => format!("  (rejected: {r})"),
            };
            out.push_str(&format!(
                "  {:>2} {:<20} → {}{note}\n",
                e.seq,
                e.body.kind(),
                serde_json::to_string(&view.state).unwrap()
            ));
        }
    }
    snapshot("replays.txt", &out);
}

/// What the server stores is what any client that applies the same events sees.
#[test]
fn deciding_then_applying_walks_the_main_path() {
    let cx = Context {
        now_ms: NOW,
        offload: &Offload::open(),
        agents_online: 1,
    };
    let mut server = View::default();
    let mut log = vec![];
    for command in [
        Command::VisitorMessage {
            text: "help".into(),
            client_msg_id: None,
        },
        Command::RequestHandover {
            directive: HandoverDirective::default(),
            page_url: None,
            locale: None,
        },
        Command::Accept {
            agent: dana(),
            notice: None,
        },
        Command::End { agent: dana() },
        Command::VisitorMessage {
            text: "thanks".into(),
            client_msg_id: None,
        },
    ] {
        for body in decide::decide(&server, &command, &cx).unwrap() {
            let e = ev(server.head_seq + 1, body);
            assert_eq!(decide::apply(&mut server, &e), Applied::Changed);
            log.push(e);
        }
    }
    assert_eq!(server.state, ConversationState::Bot);
    assert_eq!(
        server.head_seq, 7,
        "message, request, outcome, joined, ended, returned, message"
    );
    // A client that joins late and replays from any point, overlapping, ends in the same state.
    let mut client = View::default();
    decide::replay(&mut client, &log[..4]);
    decide::replay(&mut client, &log[2..]);
    assert_eq!(client, server);
}

#[test]
fn bad_text_and_ids_are_refused_with_a_reason() {
    let cx = Context {
        now_ms: NOW,
        offload: &Offload::open(),
        agents_online: 0,
    };
    let say = |text: String, id: Option<&str>| {
        decide::decide(
            &View::default(),
            &Command::VisitorMessage {
                text,
                client_msg_id: id.map(ClientMsgId::from),
            },
            &cx,
        )
    };
    let code = |r: Result<Vec<EventBody>, Refusal>| r.unwrap_err().code;
    assert_eq!(code(say("  \n ".into(), None)), ErrorCode::Empty);
    assert_eq!(code(say("x".repeat(4097), None)), ErrorCode::TooLarge);
    assert!(say("é".repeat(2048), None).is_ok(), "4096 bytes is allowed");
    let control = say("\u{1}".repeat(10), None).unwrap_err();
    assert_eq!(control.code, ErrorCode::BadFrame);
    assert!(control.message.contains("U+0001"), "{}", control.message);
    assert!(say("line one\nline two\ttab".into(), None).is_ok());
    assert_eq!(code(say("hi".into(), Some(""))), ErrorCode::BadFrame);
    assert_eq!(
        code(say("hi".into(), Some(&"k".repeat(129)))),
        ErrorCode::BadFrame
    );
    assert_eq!(
        code(say("hi".into(), Some("has space"))),
        ErrorCode::BadFrame
    );
    assert!(say("hi".into(), Some(&"k".repeat(128))).is_ok());
}

/// A directive's queue and skill are trimmed, and an empty skill is none, so a bot's
/// `"german "` reaches the agents with `german`.
#[test]
fn routing_names_are_trimmed_and_an_empty_skill_is_none() {
    let cx = Context {
        now_ms: NOW,
        offload: &Offload::open(),
        agents_online: 1,
    };
    let routed = |queue: &str, skill: &str| {
        let bodies = decide::decide(
            &View::default(),
            &Command::RequestHandover {
                directive: HandoverDirective {
                    routing: Some(Routing {
                        queue: Some(queue.into()),
                        skill: Some(skill.into()),
                    }),
                    ..HandoverDirective::default()
                },
                page_url: None,
                locale: None,
            },
            &cx,
        )
        .unwrap();
        match &bodies[0] {
            EventBody::HandoverRequested { queue, skill, .. } => (queue.clone(), skill.clone()),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        routed(" sales ", " german "),
        (Some("sales".into()), Some("german".into()))
    );
    assert_eq!(routed("", "  "), (Some("default".into()), None));
}
