//! The hand-written wire mappings agree with the protocol's serde encoding: whatever the
//! server writes (serde), the client reads as the same value; whatever the client writes,
//! serde reads as the value written.

use baton_client::outbox::Pending;
use baton_client::wire;
use baton_protocol::bot::{
    BotMessage, BotMetadata, BotRequest, Button, HandoverDirective, HandoverReason, MessageSource,
    OutcomeText, Routing, WcpMetadata,
};
use baton_protocol::ids::{AgentId, ClientMsgId, ConversationId, VisitorId};
use baton_protocol::state::{AgentRef, ConversationState, EndedBy};
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::ws::{
    ErrorCode, Event, EventBody, HandoverRequest, HandoverResponse, Role, VisitorCredentials,
    VisitorFrame, VisitorServerFrame, VisitorSession,
};

fn agent() -> AgentRef {
    AgentRef {
        id: AgentId("a-1".into()),
        name: "Ada \"the\" agent\n".into(),
    }
}

fn states() -> Vec<ConversationState> {
    vec![
        ConversationState::Bot,
        ConversationState::HandoverRequested {
            reason: HandoverReason::BotCannotHandle,
        },
        ConversationState::Queued {
            position: Some(3),
            agents_online: Some(false),
        },
        ConversationState::Queued {
            position: None,
            agents_online: None,
        },
        ConversationState::AgentJoined { agent: agent() },
        ConversationState::Ended {
            by: EndedBy::Visitor,
        },
        ConversationState::Ended { by: EndedBy::Agent },
        ConversationState::Ended {
            by: EndedBy::System,
        },
        ConversationState::Closed {
            next_open_at: Some("2026-11-30T09:00:00+01:00".into()),
        },
        ConversationState::Closed { next_open_at: None },
        ConversationState::Disabled,
        ConversationState::Unavailable,
    ]
}

fn bodies() -> Vec<EventBody> {
    let mut v = vec![
        EventBody::text(Role::Bot, "Hi 😀 <b>not html</b>"),
        EventBody::Message {
            role: Role::Visitor,
            text: "hello\u{1}\t".into(),
            client_msg_id: Some(ClientMsgId("c-1".into())),
            agent: None,
            buttons: vec![],
            image: None,
            attachment: None,
            custom: None,
        },
        EventBody::Message {
            role: Role::Agent,
            text: "from a person".into(),
            client_msg_id: Some(ClientMsgId("c-2".into())),
            agent: Some(agent()),
            buttons: vec![Button {
                title: "Yes".into(),
                payload: "/affirm".into(),
            }],
            image: Some("https://example.com/a.png".into()),
            attachment: None,
            custom: None,
        },
        EventBody::text(Role::System, "notice"),
        EventBody::HandoverRequested {
            reason: HandoverReason::UserRequest,
            reason_text: Some("asked".into()),
            message_to_agent: None,
            queue: Some("billing".into()),
            skill: Some("de".into()),
            page_url: Some("https://shop.example/cart?a=1&b=2".into()),
            slots: vec![],
            locale: None,
        },
        EventBody::HandoverRequested {
            reason: HandoverReason::Other,
            reason_text: None,
            message_to_agent: Some("note".into()),
            queue: None,
            skill: None,
            page_url: None,
            slots: vec![],
            locale: None,
        },
        EventBody::HandoverCancelled,
        EventBody::AgentJoined { agent: agent() },
        EventBody::AgentLeft { agent: agent() },
        // As visitors receive it: without the note for agents.
        EventBody::Transferred {
            from: agent(),
            to: Some(AgentRef {
                id: AgentId("a-2".into()),
                name: "Sam".into(),
            }),
            queue: None,
            note: None,
        },
        EventBody::Transferred {
            from: agent(),
            to: None,
            queue: Some("billing".into()),
            note: None,
        },
        EventBody::ChatEnded { by: EndedBy::Agent },
        EventBody::ReturnedToBot,
        EventBody::Unknown,
    ];
    v.extend(
        states()
            .into_iter()
            .map(|outcome| EventBody::HandoverOutcome { outcome }),
    );
    v
}

fn events() -> Vec<Event> {
    bodies()
        .into_iter()
        .enumerate()
        .map(|(i, body)| Event {
            seq: i as u64 + 1,
            ts: "2026-11-29T10:00:00Z".into(),
            body,
        })
        .collect()
}

fn statuses() -> Vec<OffloadStatus> {
    vec![
        OffloadStatus {
            v: 1,
            state: OffloadState::Open,
            agents_online: Some(true),
            queue_length: 2000,
            next_open_at: None,
            message: Some("Please wait".into()),
        },
        OffloadStatus {
            v: 1,
            state: OffloadState::Closed,
            agents_online: None,
            queue_length: 0,
            next_open_at: Some("2026-11-30T09:00:00+01:00".into()),
            message: None,
        },
        OffloadStatus {
            v: 1,
            state: OffloadState::Disabled,
            agents_online: Some(false),
            queue_length: 1,
            next_open_at: None,
            message: Some("off".into()),
        },
    ]
}

fn server_frames() -> Vec<VisitorServerFrame> {
    let mut v: Vec<VisitorServerFrame> = states()
        .into_iter()
        .map(|state| VisitorServerFrame::Welcome {
            v: 1,
            conversation_id: ConversationId("conv-1".into()),
            state,
            head_seq: 42,
            read_seq: 0,
        })
        .collect();
    v.push(VisitorServerFrame::Welcome {
        v: 2,
        conversation_id: ConversationId("conv-1".into()),
        state: ConversationState::AgentJoined { agent: agent() },
        head_seq: 42,
        read_seq: 40,
    });
    v.extend(
        events()
            .into_iter()
            .map(|event| VisitorServerFrame::Event { event }),
    );
    v.extend(
        statuses()
            .into_iter()
            .map(|status| VisitorServerFrame::Status { status }),
    );
    v.extend([
        VisitorServerFrame::Ack {
            client_msg_id: ClientMsgId("c-1".into()),
            seq: 9_007_199_254_740_991,
        },
        VisitorServerFrame::Queue {
            position: Some(1),
            wait_s: Some(240),
        },
        VisitorServerFrame::Queue {
            position: None,
            wait_s: None,
        },
        VisitorServerFrame::Error {
            code: ErrorCode::TooLarge,
            message: "too large".into(),
            client_msg_id: Some(ClientMsgId("c-3".into())),
        },
        VisitorServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            client_msg_id: None,
        },
        VisitorServerFrame::Typing { agent: agent() },
        VisitorServerFrame::Read { seq: 41 },
        VisitorServerFrame::Pong,
    ]);
    v
}

#[test]
fn every_visitor_server_frame_reads_as_serde_wrote_it() {
    for frame in server_frames() {
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            wire::read_visitor_server_frame(&text).unwrap(),
            frame,
            "{text}"
        );
    }
    // Every error code, by its serde name.
    for code in [
        ErrorCode::BadRequest,
        ErrorCode::BadFrame,
        ErrorCode::TooLarge,
        ErrorCode::Empty,
        ErrorCode::NotFound,
        ErrorCode::InvalidState,
        ErrorCode::Conflict,
        ErrorCode::Internal,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
    ] {
        let frame = VisitorServerFrame::Error {
            code,
            message: "m".into(),
            client_msg_id: None,
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(wire::read_visitor_server_frame(&text).unwrap(), frame);
    }
}

#[test]
fn newer_frames_are_unknown_and_broken_ones_are_errors() {
    for (text, want) in [
        (
            r#"{"type":"reaction","who":"agent"}"#,
            Some(VisitorServerFrame::Unknown),
        ),
        // A typing frame without its agent is broken, not unknown.
        (r#"{"type":"typing"}"#, None),
        (
            r#"{"type":"error","code":"teapot","message":"m"}"#,
            Some(VisitorServerFrame::Error {
                code: ErrorCode::Unknown,
                message: "m".into(),
                client_msg_id: None,
            }),
        ),
        (r#"{"type":"ack","seq":1}"#, None),
        (
            r#"{"type":"event","event":{"seq":1,"type":"message"}}"#,
            None,
        ),
        (r#"{"no_type":1}"#, None),
        ("not json", None),
    ] {
        let ours = wire::read_visitor_server_frame(text).ok();
        let serde = serde_json::from_str::<VisitorServerFrame>(text).ok();
        assert_eq!(ours, want, "{text}");
        assert_eq!(serde, want, "serde disagrees on {text}");
    }
    // An event of a newer kind is kept as Unknown with its seq, so the log stays gap-free.
    let text = r#"{"type":"event","event":{"seq":7,"ts":"t","type":"rating","stars":5}}"#;
    let want = VisitorServerFrame::Event {
        event: Event {
            seq: 7,
            ts: "t".into(),
            body: EventBody::Unknown,
        },
    };
    assert_eq!(wire::read_visitor_server_frame(text).unwrap(), want);
    assert_eq!(
        serde_json::from_str::<VisitorServerFrame>(text).unwrap(),
        want
    );
}

#[test]
fn every_visitor_frame_is_written_as_serde_reads_it() {
    for frame in [
        VisitorFrame::Hello { last_seq: 0 },
        VisitorFrame::Hello { last_seq: 123 },
        VisitorFrame::Message {
            client_msg_id: ClientMsgId("c-1".into()),
            text: "quote \" backslash \\ newline \n control \u{7} emoji 😀".into(),
        },
        VisitorFrame::Cancel,
        VisitorFrame::Typing,
        VisitorFrame::Read { seq: 17 },
        VisitorFrame::Ping,
    ] {
        let text = wire::write_visitor_frame(&frame);
        assert_eq!(
            serde_json::from_str::<VisitorFrame>(&text).unwrap(),
            frame,
            "{text}"
        );
    }
}

#[test]
fn http_bodies_agree_with_serde() {
    let creds = VisitorCredentials {
        visitor_id: VisitorId("v-1".into()),
        token: "t0k".into(),
    };
    let text = serde_json::to_string(&creds).unwrap();
    assert_eq!(wire::read_credentials(&text).unwrap(), creds);

    for status in statuses() {
        let text = serde_json::to_string(&status).unwrap();
        assert_eq!(wire::read_status(&text).unwrap(), status);
    }

    let session = VisitorSession {
        conversation_id: ConversationId("conv-1".into()),
        token: "secret".into(),
        head_seq: 17,
    };
    let text = wire::write_session(&session);
    assert_eq!(
        serde_json::from_str::<VisitorSession>(&text).unwrap(),
        session
    );
    assert_eq!(wire::read_session(&text).unwrap(), session);

    for (state, with_session) in states().into_iter().zip([true, false].into_iter().cycle()) {
        let response = HandoverResponse {
            state,
            message: "Please wait".into(),
            status: statuses()[0].clone(),
            session: with_session.then(|| session.clone()),
            events: if with_session { events() } else { vec![] },
        };
        let text = serde_json::to_string(&response).unwrap();
        assert_eq!(wire::read_handover_response(&text).unwrap(), response);
    }

    let error = baton_protocol::bot::ApiError {
        error: "rate_limited".into(),
        message: "Too many requests.".into(),
    };
    assert_eq!(
        wire::read_api_error(&serde_json::to_string(&error).unwrap()),
        Some(("rate_limited".into(), "Too many requests.".into()))
    );
    assert_eq!(wire::read_api_error("<html>"), None);
}

fn directives() -> Vec<HandoverDirective> {
    vec![
        HandoverDirective::default(),
        HandoverDirective {
            reason: HandoverReason::BotCannotHandle,
            reason_text: Some("3 misses".into()),
            message_to_agent: Some("wants a refund".into()),
            agent_available: Some(OutcomeText {
                message: "Someone is coming.".into(),
            }),
            agent_unavailable: Some(OutcomeText {
                message: "Nobody is here.".into(),
            }),
            routing: Some(Routing {
                queue: Some("billing".into()),
                skill: None,
            }),
            title: Some("Billing".into()),
            handoff_host: None,
            slots: vec![],
        },
        HandoverDirective {
            routing: Some(Routing::default()),
            ..HandoverDirective::default()
        },
    ]
}

#[test]
fn requests_are_written_as_serde_reads_them() {
    for directive in directives() {
        for (page_url, locale) in [
            (None, None),
            (
                Some("https://shop.example/?q=\"x\"".to_owned()),
                Some("de".to_owned()),
            ),
        ] {
            let r = HandoverRequest {
                visitor_id: VisitorId("v-1".into()),
                directive: directive.clone(),
                page_url,
                locale,
            };
            let text = wire::write_handover_request(&r);
            assert_eq!(serde_json::from_str::<HandoverRequest>(&text).unwrap(), r);
        }
    }
    for metadata in [
        None,
        Some(BotMetadata { wcp: None }),
        Some(BotMetadata {
            wcp: Some(WcpMetadata {
                v: 1,
                client_msg_id: Some(ClientMsgId("c-1".into())),
                source: Some(MessageSource::Button),
                event: Some("handback".into()),
                page_url: Some("https://shop.example/".into()),
                locale: Some("de-AT".into()),
            }),
        }),
        Some(BotMetadata {
            wcp: Some(WcpMetadata {
                v: 1,
                source: Some(MessageSource::Init),
                ..WcpMetadata::default()
            }),
        }),
    ] {
        let r = BotRequest {
            sender: VisitorId("v-1".into()),
            message: "/restart".into(),
            metadata,
        };
        let text = wire::write_bot_request(&r);
        assert_eq!(serde_json::from_str::<BotRequest>(&text).unwrap(), r);
    }
}

#[test]
fn bot_answers_read_their_text_buttons_and_directive_as_the_server_does() {
    let mut answer: Vec<BotMessage> = directives()
        .into_iter()
        .map(|d| BotMessage {
            text: Some("Let me check.".into()),
            custom: Some(d.to_custom()),
            ..BotMessage::default()
        })
        .collect();
    answer.push(BotMessage {
        buttons: Some(vec![Button {
            title: "Yes".into(),
            payload: "/affirm".into(),
        }]),
        image: Some("https://example.com/x.png".into()),
        attachment: Some(serde_json::json!({"any": [1, 2.5, null]})),
        custom: Some(serde_json::json!({"type": "carousel", "items": []})),
        ..BotMessage::default()
    });
    // Directives serde refuses are no directives for the widget either; odd but readable ones
    // are read alike.
    for custom in [
        serde_json::json!({"type": "handover", "title": 5}),
        serde_json::json!({"type": "handover", "reason": 5}),
        serde_json::json!({"type": "handover", "agent_available": {}}),
        serde_json::json!({"type": "handover", "routing": {"queue": ["x"]}}),
        serde_json::json!({"type": "handover", "reason": "something_new", "routing": null}),
        serde_json::json!({"type": "handover", "slots": [{"name": "email", "value": "a@b.de"}]}),
        serde_json::json!({"type": "handover", "slots": "email"}),
        serde_json::json!({"type": "handover", "slots": [{"name": "email"}]}),
        serde_json::json!({"type": "handover", "slots": [{"name": 1, "value": "x"}]}),
        serde_json::json!({"type": "handover", "slots": ["x"]}),
        serde_json::json!({"type": null, "handoff_host": "http://rasa-2"}),
        serde_json::json!({"type": 7}),
        serde_json::json!("handover"),
    ] {
        answer.push(BotMessage {
            custom: Some(custom),
            ..BotMessage::default()
        });
    }
    // The legacy chatroom directive.
    answer.push(BotMessage {
        custom: Some(serde_json::json!({"handoff_host": "http://rasa-2", "title": "Human"})),
        ..BotMessage::default()
    });
    let text = serde_json::to_string(&answer).unwrap();
    let ours = wire::read_bot_answer(&text).unwrap();
    assert_eq!(ours.len(), answer.len());
    for (mine, theirs) in ours.iter().zip(&answer) {
        assert_eq!(mine.text, theirs.text);
        assert_eq!(mine.buttons, theirs.buttons);
        // Slots are for the agent: the widget checks them but does not keep them.
        let theirs = theirs
            .handover()
            .map(|d| HandoverDirective { slots: vec![], ..d });
        assert_eq!(mine.handover, theirs, "{text}");
    }
    assert!(ours[ours.len() - 1].handover.is_some());
    assert!(wire::read_bot_answer(r#"{"text":"not a list"}"#).is_err());
}

#[test]
fn widget_settings_read_as_serde_wrote_them() {
    for after in [Some(0), Some(3), None] {
        let settings = baton_protocol::ws::WidgetSettings {
            v: 1,
            texts: [
                ("send".to_owned(), "Senden".to_owned()),
                (
                    "queue_position".to_owned(),
                    "Platz {position} \"x\"".to_owned(),
                ),
            ]
            .into(),
            locale: "de".into(),
            dir: "ltr".into(),
            request_item_after: after,
        };
        let text = serde_json::to_string(&settings).unwrap();
        let ours = wire::read_widget_settings(&text).unwrap();
        assert_eq!(
            ours.texts
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
            settings.texts
        );
        assert_eq!(ours.request_item_after, after, "{text}");
        assert_eq!(ours.locale, "de");
    }
    // A server from before the setting offers the item from the start (serde agrees).
    let before = r#"{"v":1,"texts":{}}"#;
    let old = wire::read_widget_settings(before).unwrap();
    assert_eq!(old.request_item_after, Some(0));
    assert_eq!(old.locale, "", "no language said: the browser's default");
    assert!(!old.locale_chosen);
    let chosen =
        wire::read_widget_settings(r#"{"v":2,"texts":{},"locale":"ar","chosen":true}"#).unwrap();
    assert_eq!((chosen.locale.as_str(), chosen.locale_chosen), ("ar", true));
    let serde: baton_protocol::ws::WidgetSettings = serde_json::from_str(before).unwrap();
    assert_eq!(serde.request_item_after, Some(0));
    assert!(wire::read_widget_settings(r#"{"v":1}"#).is_err());
}

#[test]
fn the_outbox_round_trips_and_reads_what_serde_wrote() {
    let items = vec![
        Pending {
            client_msg_id: ClientMsgId("c-1".into()),
            conversation: None,
            text: "/affirm".into(),
            shown: Some("Yes".into()),
            source: Some(MessageSource::Button),
        },
        Pending {
            client_msg_id: ClientMsgId("c-2".into()),
            conversation: Some(ConversationId("conv-1".into())),
            text: "plain \"quoted\"".into(),
            shown: None,
            source: None,
        },
    ];
    let text = wire::write_pending(&items);
    assert_eq!(wire::read_pending(&text).unwrap(), items);
    assert_eq!(serde_json::from_str::<Vec<Pending>>(&text).unwrap(), items);
    let serde_text = serde_json::to_string(&items).unwrap();
    assert_eq!(wire::read_pending(&serde_text).unwrap(), items);
}

#[test]
fn a_rating_is_written_as_serde_reads_it() {
    for r in [
        baton_protocol::ws::RatingRequest {
            visitor_id: VisitorId("v_1".into()),
            stars: 5,
            comment: Some("Quick \"and\" kind\nthank you".into()),
        },
        baton_protocol::ws::RatingRequest {
            visitor_id: VisitorId("v_1".into()),
            stars: 1,
            comment: None,
        },
    ] {
        let text = wire::write_rating(&r);
        assert_eq!(
            serde_json::from_str::<baton_protocol::ws::RatingRequest>(&text).unwrap(),
            r,
            "{text}"
        );
    }
}
