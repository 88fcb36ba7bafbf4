//! A conversation as a client holds it: its events, oldest first, and the state they lead to
//! through the protocol's `apply`, the same function the server runs.

use std::collections::HashSet;

use baton_protocol::decide::{self, Applied, View};
use baton_protocol::ids::ClientMsgId;
use baton_protocol::state::{ConversationState, Rejected};
use baton_protocol::ws::{Event, EventBody, Role};

/// What one event did to the timeline.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Seen before (a replay overlapping what the client had, or a message whose author and
    /// `client_msg_id` are already in the timeline): nothing changed.
    Duplicate,
    /// Added; the state may have changed.
    Added,
    /// Added, but the state machine refused the change it implies (kept, and logged).
    AddedRejected(Rejected),
}

/// The events and the state they lead to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    view: View,
    events: Vec<Event>,
    ids: HashSet<(Role, ClientMsgId)>,
}

impl Timeline {
    /// An empty timeline (state: with the bot).
    pub fn new() -> Self {
        Self::default()
    }

    /// A timeline from a whole log (or a server's transcript).
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Self {
        let mut t = Self::new();
        for e in events {
            t.apply(e);
        }
        t
    }

    /// Applies one event, once: an event at or below the last seq, or a message whose author
    /// already sent that `client_msg_id`, changes nothing.
    pub fn apply(&mut self, event: Event) -> Step {
        let key = match &event.body {
            EventBody::Message {
                role,
                client_msg_id: Some(id),
                ..
            } => Some((*role, id.clone())),
            _ => None,
        };
        if event.seq <= self.view.head_seq {
            return Step::Duplicate;
        }
        if key.as_ref().is_some_and(|k| self.ids.contains(k)) {
            // Still counts as seen, so `hello` does not ask for it again.
            self.view.head_seq = event.seq;
            return Step::Duplicate;
        }
        let step = match decide::apply(&mut self.view, &event) {
            Applied::Duplicate => return Step::Duplicate,
            Applied::Changed => Step::Added,
            Applied::Rejected(r) => Step::AddedRejected(r),
        };
        if let Some(k) = key {
            self.ids.insert(k);
        }
        self.events.push(event);
        step
    }

    /// The state the events lead to.
    pub fn state(&self) -> &ConversationState {
        &self.view.state
    }

    /// The seq of the last event (what `hello {last_seq}` says).
    pub fn head_seq(&self) -> u64 {
        self.view.head_seq
    }

    /// The events, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The decider's view (for the console's and widget's state rules).
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether the author `role` already has a message with this key here.
    pub fn has_message(&self, role: Role, id: &ClientMsgId) -> bool {
        self.ids.contains(&(role, id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_protocol::bot::HandoverReason;
    use baton_protocol::ids::AgentId;
    use baton_protocol::state::{AgentRef, EndedBy};

    fn ev(seq: u64, body: EventBody) -> Event {
        Event {
            seq,
            ts: "2026-11-22T08:00:00Z".into(),
            body,
        }
    }

    fn said(role: Role, text: &str, id: Option<&str>) -> EventBody {
        EventBody::Message {
            role,
            text: text.into(),
            client_msg_id: id.map(|i| ClientMsgId(i.into())),
            agent: None,
            buttons: vec![],
            image: None,
            attachment: None,
            custom: None,
        }
    }

    fn log() -> Vec<Event> {
        let dana = AgentRef {
            id: AgentId::from("a_1"),
            name: "Dana".into(),
        };
        vec![
            ev(1, said(Role::Visitor, "hello", Some("v1"))),
            ev(2, said(Role::Bot, "Hi!", None)),
            ev(
                3,
                EventBody::HandoverRequested {
                    reason: HandoverReason::UserRequest,
                    reason_text: None,
                    message_to_agent: None,
                    queue: None,
                    skill: None,
                    page_url: None,
                    slots: vec![],
                    locale: None,
                },
            ),
            ev(
                4,
                EventBody::HandoverOutcome {
                    outcome: ConversationState::Queued {
                        position: None,
                        agents_online: Some(true),
                    },
                },
            ),
            ev(5, EventBody::AgentJoined { agent: dana }),
            ev(6, said(Role::Agent, "How can I help?", Some("a1"))),
            ev(7, EventBody::ChatEnded { by: EndedBy::Agent }),
        ]
    }

    #[test]
    fn a_log_becomes_its_events_and_the_state_they_lead_to() {
        let t = Timeline::from_events(log());
        assert_eq!(t.head_seq(), 7);
        assert_eq!(t.events().len(), 7);
        assert_eq!(t.state(), &ConversationState::Ended { by: EndedBy::Agent });
        let mid = Timeline::from_events(log().into_iter().take(5));
        assert!(
            matches!(mid.state(), ConversationState::AgentJoined { agent } if agent.name == "Dana")
        );
    }

    #[test]
    fn a_replay_that_overlaps_adds_nothing_twice() {
        let mut t = Timeline::from_events(log().into_iter().take(4));
        // A reconnect replays from seq 3.
        let steps: Vec<Step> = log().into_iter().skip(2).map(|e| t.apply(e)).collect();
        assert_eq!(
            steps,
            [
                Step::Duplicate,
                Step::Duplicate,
                Step::Added,
                Step::Added,
                Step::Added
            ]
        );
        assert_eq!(t.events().len(), 7);
        let seqs: Vec<u64> = t.events().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_message_key_counts_once_per_author() {
        let mut t = Timeline::new();
        assert_eq!(
            t.apply(ev(1, said(Role::Visitor, "hi", Some("k")))),
            Step::Added
        );
        // The same key from the same author under another seq is the same message.
        assert_eq!(
            t.apply(ev(2, said(Role::Visitor, "hi", Some("k")))),
            Step::Duplicate
        );
        // From another author it is another message (keys are scoped per author).
        assert_eq!(
            t.apply(ev(3, said(Role::Agent, "hi", Some("k")))),
            Step::Added
        );
        assert!(t.has_message(Role::Visitor, &ClientMsgId("k".into())));
        assert!(!t.has_message(Role::Bot, &ClientMsgId("k".into())));
        assert_eq!(t.head_seq(), 3);
    }

    #[test]
    fn an_event_the_state_machine_refuses_is_kept_and_reported() {
        let mut t = Timeline::new();
        let step = t.apply(ev(1, EventBody::ChatEnded { by: EndedBy::Agent }));
        assert!(matches!(step, Step::AddedRejected(_)), "{step:?}");
        assert_eq!(t.state(), &ConversationState::Bot);
        assert_eq!(t.events().len(), 1);
    }
}
