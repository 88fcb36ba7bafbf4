//! Serde snapshot tests: every wire type's JSON is written out here, so renaming a field is a
//! visible diff, and each snapshot must decode back to the same value.

use baton_protocol::bot::*;
use baton_protocol::ids::*;
use baton_protocol::state::*;
use baton_protocol::status::*;
use baton_protocol::ws::*;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;
use std::fmt::Debug;

/// Serialises `value`, compares it with `expected`, and decodes `expected` back to `value`.
#[track_caller]
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: T,
    expected: serde_json::Value,
) {
    let actual = serde_json::to_value(&value).unwrap();
    assert_eq!(actual, expected, "serialised form changed");
    let back: T = serde_json::from_value(expected).unwrap();
    assert_eq!(back, value, "snapshot does not decode to the same value");
}

fn agent() -> AgentRef {
    AgentRef {
        id: AgentId::from("a_1"),
        name: "Dana".into(),
    }
}

fn event(seq: u64, body: EventBody) -> Event {
    Event {
        seq,
        ts: "2026-11-21T15:00:00.000Z".into(),
        body,
    }
}

#[test]
fn bot_request_is_rasa_shaped() {
    check(
        BotRequest {
            sender: VisitorId::from("v_1"),
            message: "hi".into(),
            metadata: Some(BotMetadata {
                wcp: Some(WcpMetadata {
                    v: 1,
                    client_msg_id: Some(ClientMsgId::from("c_1")),
                    source: Some(MessageSource::Text),
                    event: None,
                    page_url: None,
                    locale: None,
                }),
            }),
        },
        json!({"sender":"v_1","message":"hi","metadata":{"wcp":{"v":1,"client_msg_id":"c_1","source":"text"}}}),
    );
    // A stock Rasa client sends neither metadata nor anything else.
    check(
        BotRequest {
            sender: VisitorId::from("v_1"),
            message: "hi".into(),
            metadata: None,
        },
        json!({"sender":"v_1","message":"hi"}),
    );
}

#[test]
fn bot_messages_are_rasa_shaped() {
    check(
        vec![
            BotMessage::text(&VisitorId::from("v_1"), "Hello"),
            BotMessage {
                recipient_id: Some(VisitorId::from("v_1")),
                text: Some("Pick one".into()),
                buttons: Some(vec![Button {
                    title: "Billing".into(),
                    payload: "/billing".into(),
                }]),
                image: Some("https://example.com/a.png".into()),
                attachment: Some(json!({"type":"file"})),
                custom: Some(json!({"anything": true})),
            },
        ],
        json!([
            {"recipient_id":"v_1","text":"Hello"},
            {"recipient_id":"v_1","text":"Pick one","buttons":[{"title":"Billing","payload":"/billing"}],
             "image":"https://example.com/a.png","attachment":{"type":"file"},"custom":{"anything":true}}
        ]),
    );
}

#[test]
fn handover_directive_round_trips_through_custom() {
    let d = HandoverDirective {
        reason: HandoverReason::BotCannotHandle,
        message_to_agent: Some("Wants a refund".into()),
        agent_available: Some(OutcomeText {
            message: "Connecting you".into(),
        }),
        agent_unavailable: Some(OutcomeText {
            message: "Nobody is free".into(),
        }),
        routing: Some(Routing {
            queue: Some("billing".into()),
            skill: None,
        }),
        ..HandoverDirective::default()
    };
    let custom = d.to_custom();
    assert_eq!(
        custom,
        json!({"type":"handover","v":2,"reason":"bot_cannot_handle","message_to_agent":"Wants a refund",
               "agent_available":{"message":"Connecting you"},"agent_unavailable":{"message":"Nobody is free"},
               "routing":{"queue":"billing"}})
    );
    assert_eq!(HandoverDirective::from_custom(&custom), Some(d));
}

#[test]
fn legacy_chatroom_handoff_host_is_a_directive() {
    let d = HandoverDirective::from_custom(
        &json!({"handoff_host":"http://localhost:5006","title":"Human"}),
    )
    .unwrap();
    assert_eq!(d.handoff_host.as_deref(), Some("http://localhost:5006"));
    assert_eq!(d.title.as_deref(), Some("Human"));
    assert_eq!(d.reason, HandoverReason::Policy);
    // Other custom payloads are not directives and unknown reasons degrade to `other`.
    assert_eq!(
        HandoverDirective::from_custom(&json!({"type":"carousel"})),
        None
    );
    assert_eq!(HandoverDirective::from_custom(&json!("handover")), None);
    let odd =
        HandoverDirective::from_custom(&json!({"type":"handover","reason":"sentiment"})).unwrap();
    assert_eq!(odd.reason, HandoverReason::Other);
}

#[test]
fn offload_status() {
    check(
        OffloadStatus {
            v: 1,
            state: OffloadState::Closed,
            agents_online: Some(false),
            queue_length: 0,
            next_open_at: Some("2026-11-23T08:00:00+01:00".into()),
            message: Some("We are closed".into()),
        },
        json!({"v":1,"state":"closed","agents_online":false,"queue_length":0,
               "next_open_at":"2026-11-23T08:00:00+01:00","message":"We are closed"}),
    );
    check(
        OffloadStatus {
            v: 1,
            state: OffloadState::Disabled,
            agents_online: None,
            queue_length: 2,
            next_open_at: None,
            message: None,
        },
        json!({"v":1,"state":"disabled","agents_online":null,"queue_length":2}),
    );
}

#[test]
fn conversation_states() {
    check(ConversationState::Bot, json!({"state":"bot"}));
    check(
        ConversationState::HandoverRequested {
            reason: HandoverReason::UserRequest,
        },
        json!({"state":"handover_requested","reason":"user_request"}),
    );
    check(
        ConversationState::Queued {
            position: Some(2),
            agents_online: Some(true),
        },
        json!({"state":"queued","position":2,"agents_online":true}),
    );
    check(
        ConversationState::AgentJoined { agent: agent() },
        json!({"state":"agent_joined","agent":{"id":"a_1","name":"Dana"}}),
    );
    check(
        ConversationState::Ended { by: EndedBy::Agent },
        json!({"state":"ended","by":"agent"}),
    );
    check(
        ConversationState::Closed { next_open_at: None },
        json!({"state":"closed","next_open_at":null}),
    );
    check(ConversationState::Disabled, json!({"state":"disabled"}));
    check(
        ConversationState::Unavailable,
        json!({"state":"unavailable"}),
    );
}

#[test]
fn durable_events() {
    check(
        event(
            3,
            EventBody::Message {
                role: Role::Visitor,
                text: "<b>hi</b>".into(),
                client_msg_id: Some(ClientMsgId::from("c_1")),
                agent: None,
                buttons: vec![],
                image: None,
                attachment: None,
                custom: None,
            },
        ),
        json!({"seq":3,"ts":"2026-11-21T15:00:00.000Z","type":"message","role":"visitor","text":"<b>hi</b>","client_msg_id":"c_1"}),
    );
    check(
        event(
            4,
            EventBody::Message {
                role: Role::Agent,
                text: "Hi".into(),
                client_msg_id: None,
                agent: Some(agent()),
                buttons: vec![],
                image: None,
                attachment: None,
                custom: None,
            },
        ),
        json!({"seq":4,"ts":"2026-11-21T15:00:00.000Z","type":"message","role":"agent","text":"Hi","agent":{"id":"a_1","name":"Dana"}}),
    );
    // A bot item keeps what a Rasa bot sent besides text.
    check(
        event(
            4,
            EventBody::Message {
                role: Role::Bot,
                text: String::new(),
                client_msg_id: None,
                agent: None,
                buttons: vec![],
                image: Some("https://example.com/a.png".into()),
                attachment: Some(json!({"type": "file"})),
                custom: Some(json!({"carousel": []})),
            },
        ),
        json!({"seq":4,"ts":"2026-11-21T15:00:00.000Z","type":"message","role":"bot","text":"",
               "image":"https://example.com/a.png","attachment":{"type":"file"},"custom":{"carousel":[]}}),
    );
    check(
        event(
            5,
            EventBody::HandoverRequested {
                reason: HandoverReason::UserRequest,
                reason_text: None,
                message_to_agent: Some("note".into()),
                queue: Some("billing".into()),
                skill: Some("refunds".into()),
                page_url: Some("https://shop.example.com/cart".into()),
                slots: vec![],
                locale: Some("de".into()),
            },
        ),
        json!({"seq":5,"ts":"2026-11-21T15:00:00.000Z","type":"handover_requested","reason":"user_request",
               "message_to_agent":"note","queue":"billing","skill":"refunds","page_url":"https://shop.example.com/cart",
               "locale":"de"}),
    );
    // Version 1 events, without the fields added since, still decode.
    let v1: Event = serde_json::from_value(
        json!({"seq":5,"ts":"x","type":"handover_requested","reason":"policy"}),
    )
    .unwrap();
    assert!(matches!(
        v1.body,
        EventBody::HandoverRequested {
            queue: None,
            page_url: None,
            ..
        }
    ));
    check(
        event(
            6,
            EventBody::HandoverOutcome {
                outcome: ConversationState::Disabled,
            },
        ),
        json!({"seq":6,"ts":"2026-11-21T15:00:00.000Z","type":"handover_outcome","outcome":{"state":"disabled"}}),
    );
    check(
        event(7, EventBody::HandoverCancelled),
        json!({"seq":7,"ts":"2026-11-21T15:00:00.000Z","type":"handover_cancelled"}),
    );
    check(
        event(8, EventBody::AgentJoined { agent: agent() }),
        json!({"seq":8,"ts":"2026-11-21T15:00:00.000Z","type":"agent_joined","agent":{"id":"a_1","name":"Dana"}}),
    );
    check(
        event(9, EventBody::ChatEnded { by: EndedBy::Agent }),
        json!({"seq":9,"ts":"2026-11-21T15:00:00.000Z","type":"chat_ended","by":"agent"}),
    );
    check(
        event(10, EventBody::ReturnedToBot),
        json!({"seq":10,"ts":"2026-11-21T15:00:00.000Z","type":"returned_to_bot"}),
    );
    let transferred = event(
        11,
        EventBody::Transferred {
            from: agent(),
            to: Some(AgentRef {
                id: AgentId::from("a_2"),
                name: "Sam".into(),
            }),
            queue: None,
            note: Some("VIP".into()),
        },
    );
    check(
        transferred.clone(),
        json!({"seq":11,"ts":"2026-11-21T15:00:00.000Z","type":"transferred","from":{"id":"a_1","name":"Dana"},
               "to":{"id":"a_2","name":"Sam"},"note":"VIP"}),
    );
    // The note is for agents only.
    check(
        transferred.for_visitor(),
        json!({"seq":11,"ts":"2026-11-21T15:00:00.000Z","type":"transferred","from":{"id":"a_1","name":"Dana"},
               "to":{"id":"a_2","name":"Sam"}}),
    );
    check(
        event(
            12,
            EventBody::Transferred {
                from: agent(),
                to: None,
                queue: Some("billing".into()),
                note: None,
            },
        ),
        json!({"seq":12,"ts":"2026-11-21T15:00:00.000Z","type":"transferred","from":{"id":"a_1","name":"Dana"},"queue":"billing"}),
    );
}

#[test]
fn unknown_event_and_frame_types_are_tolerated() {
    let e: Event =
        serde_json::from_value(json!({"seq":1,"ts":"x","type":"rating","stars":5})).unwrap();
    assert_eq!(e.body, EventBody::Unknown);
    let f: VisitorServerFrame =
        serde_json::from_value(json!({"type":"reaction","state":"on"})).unwrap();
    assert_eq!(f, VisitorServerFrame::Unknown);
    let f: AgentServerFrame = serde_json::from_value(json!({"type":"supervisor_note"})).unwrap();
    assert_eq!(f, AgentServerFrame::Unknown);
    // Unknown fields are ignored too.
    let f: VisitorServerFrame = serde_json::from_value(json!({"type":"pong","extra":1})).unwrap();
    assert_eq!(f, VisitorServerFrame::Pong);
}

#[test]
fn visitor_frames() {
    check(
        VisitorFrame::Hello { last_seq: 4 },
        json!({"type":"hello","last_seq":4}),
    );
    check(
        VisitorFrame::Message {
            client_msg_id: ClientMsgId::from("c_2"),
            text: "Order 12".into(),
        },
        json!({"type":"message","client_msg_id":"c_2","text":"Order 12"}),
    );
    check(VisitorFrame::Cancel, json!({"type":"cancel"}));
    check(VisitorFrame::Typing, json!({"type":"typing"}));
    check(
        VisitorFrame::Read { seq: 7 },
        json!({"type":"read","seq":7}),
    );
    check(VisitorFrame::Ping, json!({"type":"ping"}));
}

#[test]
fn visitor_server_frames() {
    check(
        VisitorServerFrame::Welcome {
            v: 1,
            conversation_id: ConversationId::from("c1"),
            state: ConversationState::Queued {
                position: Some(1),
                agents_online: Some(false),
            },
            head_seq: 4,
            read_seq: 0,
        },
        json!({"type":"welcome","v":1,"conversation_id":"c1","state":{"state":"queued","position":1,"agents_online":false},"head_seq":4}),
    );
    check(
        VisitorServerFrame::Welcome {
            v: 2,
            conversation_id: ConversationId::from("c1"),
            state: ConversationState::AgentJoined { agent: agent() },
            head_seq: 9,
            read_seq: 8,
        },
        json!({"type":"welcome","v":2,"conversation_id":"c1","state":{"state":"agent_joined","agent":{"id":"a_1","name":"Dana"}},"head_seq":9,"read_seq":8}),
    );
    check(
        VisitorServerFrame::Typing { agent: agent() },
        json!({"type":"typing","agent":{"id":"a_1","name":"Dana"}}),
    );
    check(
        VisitorServerFrame::Read { seq: 8 },
        json!({"type":"read","seq":8}),
    );
    check(
        VisitorServerFrame::Event {
            event: event(5, EventBody::ReturnedToBot),
        },
        json!({"type":"event","event":{"seq":5,"ts":"2026-11-21T15:00:00.000Z","type":"returned_to_bot"}}),
    );
    check(
        VisitorServerFrame::Ack {
            client_msg_id: ClientMsgId::from("c_2"),
            seq: 5,
        },
        json!({"type":"ack","client_msg_id":"c_2","seq":5}),
    );
    check(
        VisitorServerFrame::Queue {
            position: Some(3),
            wait_s: None,
        },
        json!({"type":"queue","position":3}),
    );
    check(
        VisitorServerFrame::Queue {
            position: Some(2),
            wait_s: Some(150),
        },
        json!({"type":"queue","position":2,"wait_s":150}),
    );
    check(
        VisitorServerFrame::Status {
            status: OffloadStatus {
                v: 1,
                state: OffloadState::Open,
                agents_online: Some(true),
                queue_length: 1,
                next_open_at: None,
                message: None,
            },
        },
        json!({"type":"status","status":{"v":1,"state":"open","agents_online":true,"queue_length":1}}),
    );
    check(
        VisitorServerFrame::Error {
            code: ErrorCode::BadFrame,
            message: "nope".into(),
            client_msg_id: None,
        },
        json!({"type":"error","code":"bad_frame","message":"nope"}),
    );
    check(VisitorServerFrame::Pong, json!({"type":"pong"}));
}

fn summary() -> ConversationSummary {
    ConversationSummary {
        conversation_id: ConversationId::from("c1"),
        visitor_id: VisitorId::from("v_1"),
        state: ConversationState::Queued {
            position: Some(1),
            agents_online: Some(true),
        },
        reason: HandoverReason::UserRequest,
        message_to_agent: None,
        waiting_since: "2026-11-21T15:00:00.000Z".into(),
        preview: Some("I want a person".into()),
        queue: Some("default".into()),
        skill: Some("german".into()),
        page_url: None,
        reason_text: Some("menu_item".into()),
        slots: vec![Slot {
            name: "email".into(),
            value: "ada@example.org".into(),
        }],
        locale: Some("de".into()),
    }
}

#[test]
fn agent_frames() {
    let c = || ConversationId::from("c1");
    check(
        AgentFrame::Open {
            conversation_id: c(),
        },
        json!({"type":"open","conversation_id":"c1"}),
    );
    check(
        AgentFrame::Accept {
            conversation_id: c(),
        },
        json!({"type":"accept","conversation_id":"c1"}),
    );
    check(
        AgentFrame::Message {
            conversation_id: c(),
            client_msg_id: ClientMsgId::from("k"),
            text: "Hi".into(),
        },
        json!({"type":"message","conversation_id":"c1","client_msg_id":"k","text":"Hi"}),
    );
    check(
        AgentFrame::End {
            conversation_id: c(),
        },
        json!({"type":"end","conversation_id":"c1"}),
    );
    check(
        AgentFrame::Transfer {
            conversation_id: c(),
            to: Some(AgentId::from("a_2")),
            queue: None,
            note: Some("VIP".into()),
        },
        json!({"type":"transfer","conversation_id":"c1","to":"a_2","note":"VIP"}),
    );
    check(
        AgentFrame::Transfer {
            conversation_id: c(),
            to: None,
            queue: Some("billing".into()),
            note: None,
        },
        json!({"type":"transfer","conversation_id":"c1","queue":"billing"}),
    );
    check(
        AgentFrame::TransferAnswer {
            conversation_id: c(),
            accept: true,
        },
        json!({"type":"transfer_answer","conversation_id":"c1","accept":true}),
    );
    check(
        AgentFrame::Presence { away: true },
        json!({"type":"presence","away":true}),
    );
    check(
        AgentFrame::Typing {
            conversation_id: c(),
        },
        json!({"type":"typing","conversation_id":"c1"}),
    );
    check(
        AgentFrame::Read {
            conversation_id: c(),
            seq: 12,
        },
        json!({"type":"read","conversation_id":"c1","seq":12}),
    );
    check(AgentFrame::Ping, json!({"type":"ping"}));
}

#[test]
fn agent_server_frames() {
    let summary_json = json!({"conversation_id":"c1","visitor_id":"v_1","state":{"state":"queued","position":1,"agents_online":true},
        "reason":"user_request","waiting_since":"2026-11-21T15:00:00.000Z","preview":"I want a person","queue":"default","skill":"german",
        "reason_text":"menu_item","slots":[{"name":"email","value":"ada@example.org"}],"locale":"de"});
    check(
        AgentServerFrame::Welcome {
            v: 1,
            agent: agent(),
            waiting: vec![summary()],
            mine: vec![],
            supervisor: false,
            away: false,
            canned: vec![],
            offers: vec![],
        },
        json!({"type":"welcome","v":1,"agent":{"id":"a_1","name":"Dana"},"waiting":[summary_json.clone()],"mine":[]}),
    );
    check(
        AgentServerFrame::Welcome {
            v: 1,
            agent: agent(),
            waiting: vec![],
            mine: vec![],
            supervisor: true,
            away: true,
            canned: vec![CannedReply {
                name: "hello".into(),
                text: "Hello!".into(),
            }],
            offers: vec![TransferOffer {
                conversation: summary(),
                from: agent(),
                note: None,
            }],
        },
        json!({"type":"welcome","v":1,"agent":{"id":"a_1","name":"Dana"},"waiting":[],"mine":[],"supervisor":true,
               "away":true,"canned":[{"name":"hello","text":"Hello!"}],
               "offers":[{"conversation":summary_json.clone(),"from":{"id":"a_1","name":"Dana"}}]}),
    );
    check(
        AgentServerFrame::Offer {
            offer: TransferOffer {
                conversation: summary(),
                from: agent(),
                note: Some("VIP".into()),
            },
        },
        json!({"type":"offer","offer":{"conversation":summary_json.clone(),"from":{"id":"a_1","name":"Dana"},"note":"VIP"}}),
    );
    check(
        AgentServerFrame::Offered {
            conversation_id: ConversationId::from("c1"),
            to: agent(),
        },
        json!({"type":"offered","conversation_id":"c1","to":{"id":"a_1","name":"Dana"}}),
    );
    for (outcome, name) in [
        (OfferOutcome::Taken, "taken"),
        (OfferOutcome::Declined, "declined"),
        (OfferOutcome::Withdrawn, "withdrawn"),
    ] {
        check(
            AgentServerFrame::OfferEnded {
                conversation_id: ConversationId::from("c1"),
                to: agent(),
                outcome,
            },
            json!({"type":"offer_ended","conversation_id":"c1","to":{"id":"a_1","name":"Dana"},"outcome":name}),
        );
    }
    check(
        AgentServerFrame::Team {
            agents: vec![TeamMember {
                agent: agent(),
                presence: Presence::Away,
                chats: 2,
                max_chats: 5,
                supervisor: false,
            }],
            queues: vec!["default".into()],
            chats: vec![],
        },
        json!({"type":"team","agents":[{"agent":{"id":"a_1","name":"Dana"},"presence":"away","chats":2,"max_chats":5}],
               "queues":["default"]}),
    );
    check(
        AgentServerFrame::Waiting {
            conversation: summary(),
        },
        json!({"type":"waiting","conversation":summary_json.clone()}),
    );
    check(
        AgentServerFrame::Dequeued {
            conversation_id: ConversationId::from("c1"),
        },
        json!({"type":"dequeued","conversation_id":"c1"}),
    );
    check(
        AgentServerFrame::Transcript {
            conversation: summary(),
            events: vec![event(1, EventBody::ReturnedToBot)],
            visitor_read_seq: 0,
        },
        json!({"type":"transcript","conversation":summary_json.clone(),"events":[{"seq":1,"ts":"2026-11-21T15:00:00.000Z","type":"returned_to_bot"}]}),
    );
    check(
        AgentServerFrame::Transcript {
            conversation: summary(),
            events: vec![],
            visitor_read_seq: 3,
        },
        json!({"type":"transcript","conversation":summary_json,"events":[],"visitor_read_seq":3}),
    );
    check(
        AgentServerFrame::Typing {
            conversation_id: ConversationId::from("c1"),
        },
        json!({"type":"typing","conversation_id":"c1"}),
    );
    check(
        AgentServerFrame::Read {
            conversation_id: ConversationId::from("c1"),
            seq: 4,
        },
        json!({"type":"read","conversation_id":"c1","seq":4}),
    );
    check(
        AgentServerFrame::Event {
            conversation_id: ConversationId::from("c1"),
            event: event(2, EventBody::HandoverCancelled),
        },
        json!({"type":"event","conversation_id":"c1","event":{"seq":2,"ts":"2026-11-21T15:00:00.000Z","type":"handover_cancelled"}}),
    );
    check(
        AgentServerFrame::Ack {
            client_msg_id: ClientMsgId::from("k"),
            seq: 9,
        },
        json!({"type":"ack","client_msg_id":"k","seq":9}),
    );
    check(
        AgentServerFrame::Error {
            code: ErrorCode::Conflict,
            message: "taken".into(),
            client_msg_id: None,
        },
        json!({"type":"error","code":"conflict","message":"taken"}),
    );
    check(
        AgentServerFrame::Error {
            code: ErrorCode::InvalidState,
            message: "not yours".into(),
            client_msg_id: Some(ClientMsgId::from("k")),
        },
        json!({"type":"error","code":"invalid_state","message":"not yours","client_msg_id":"k"}),
    );
    check(AgentServerFrame::Pong, json!({"type":"pong"}));
}

#[test]
fn http_bodies() {
    check(
        HandoverRequest {
            visitor_id: VisitorId::from("v_1"),
            directive: HandoverDirective::default(),
            page_url: Some("https://shop.example.com/".into()),
            locale: Some("ar".into()),
        },
        json!({"visitor_id":"v_1","directive":{"reason":"user_request"},"page_url":"https://shop.example.com/","locale":"ar"}),
    );
    check(
        VisitorCredentials {
            visitor_id: VisitorId::from("v_1"),
            token: "secret".into(),
        },
        json!({"visitor_id":"v_1","token":"secret"}),
    );
    // The directive may be left out entirely.
    let r: HandoverRequest = serde_json::from_value(json!({"visitor_id":"v_1"})).unwrap();
    assert_eq!(r.directive, HandoverDirective::default());
    check(
        HandoverResponse {
            state: ConversationState::Queued {
                position: Some(1),
                agents_online: Some(true),
            },
            message: "Please wait".into(),
            status: OffloadStatus {
                v: 1,
                state: OffloadState::Open,
                agents_online: Some(true),
                queue_length: 1,
                next_open_at: None,
                message: None,
            },
            session: Some(VisitorSession {
                conversation_id: ConversationId::from("c1"),
                token: "t".into(),
                head_seq: 3,
            }),
            events: vec![event(
                3,
                EventBody::HandoverOutcome {
                    outcome: ConversationState::Queued {
                        position: None,
                        agents_online: Some(true),
                    },
                },
            )],
        },
        json!({"state":{"state":"queued","position":1,"agents_online":true},"message":"Please wait",
               "status":{"v":1,"state":"open","agents_online":true,"queue_length":1},
               "session":{"conversation_id":"c1","token":"t","head_seq":3},
               "events":[{"seq":3,"ts":"2026-11-21T15:00:00.000Z","type":"handover_outcome",
                          "outcome":{"state":"queued","position":null,"agents_online":true}}]}),
    );
    check(
        LoginRequest {
            email: "a@b.c".into(),
            password: "p".into(),
        },
        json!({"email":"a@b.c","password":"p"}),
    );
    check(
        LoginResponse {
            token: "t".into(),
            agent: agent(),
            expires_at: Some("2026-11-22T03:00:00.000Z".into()),
        },
        json!({"token":"t","agent":{"id":"a_1","name":"Dana"},"expires_at":"2026-11-22T03:00:00.000Z"}),
    );
    // The note for the agent never reaches a visitor.
    let requested = event(
        5,
        EventBody::HandoverRequested {
            reason: HandoverReason::UserRequest,
            reason_text: None,
            message_to_agent: Some("VIP customer".into()),
            queue: None,
            skill: None,
            page_url: None,
            slots: vec![],
            locale: None,
        },
    );
    assert!(
        !serde_json::to_string(&requested.for_visitor())
            .unwrap()
            .contains("VIP")
    );
    check(
        ApiError {
            error: "bad_request".into(),
            message: "missing field `sender`".into(),
        },
        json!({"error":"bad_request","message":"missing field `sender`"}),
    );
}
