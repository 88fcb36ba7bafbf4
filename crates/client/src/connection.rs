//! The life of a client's socket as a pure state machine: the app feeds it what happened
//! (it wants a connection, the socket opened, the server welcomed it, the socket closed, a
//! timer fired) and carries out the actions it returns. The same machine runs the widget's
//! visitor socket and the console's agent socket.

use std::time::Duration;

use baton_protocol::ws::close;

use crate::backoff::Backoff;

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No connection wanted.
    Idle,
    /// A socket is opening, or open and waiting for the server's welcome.
    Connecting,
    /// Welcomed: frames flow.
    Open,
    /// Dropped; the next attempt is due after a wait.
    Waiting,
    /// The server refused the credential or session (4401): nothing more to try with it.
    Refused,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The app wants a connection (a session started, a page loaded with one).
    Start,
    /// The socket is open.
    Opened,
    /// The server's welcome arrived.
    Welcomed,
    /// The socket closed with this code.
    Closed(u16),
    /// The wait scheduled by [`Action::RetryIn`] is over.
    RetryDue,
    /// The app no longer wants a connection (back with the bot, logged out).
    Stop,
}

/// What the app does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a socket.
    Open,
    /// Send `hello {last_seq}` with the last seq the app has (visitor sockets).
    Hello,
    /// Send everything in the outbox again, with the same ids.
    ResendOutbox,
    /// Call back with [`Input::RetryDue`] after this long.
    RetryIn(Duration),
    /// Close the socket normally.
    Close,
    /// Forget the credential or session: the server will not accept it again.
    Forget,
}

/// The connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    link: Link,
    backoff: Backoff,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new(Backoff::default())
    }
}

impl Connection {
    /// An idle connection that waits per `backoff` between attempts.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            link: Link::Idle,
            backoff,
        }
    }

    /// Where it is.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Failed attempts since the last welcome.
    pub fn failures(&self) -> u32 {
        self.backoff.attempts()
    }

    /// Feeds one input and says what to do (at most one thing); `random` (uniform in `[0, 1)`) jitters the wait before a retry.
    pub fn handle(&mut self, input: Input, random: f64) -> Option<Action> {
        use Link::*;
        match (self.link, input) {
            (Idle | Refused, Input::Start) => {
                self.backoff.reset();
                self.link = Connecting;
                Some(Action::Open)
            }
            (Connecting, Input::Opened) => Some(Action::Hello),
            (Connecting, Input::Welcomed) => {
                self.link = Open;
                self.backoff.reset();
                Some(Action::ResendOutbox)
            }
            (Idle | Refused, Input::Closed(_)) => None,
            (_, Input::Closed(close::UNAUTHORIZED)) => {
                self.link = Refused;
                Some(Action::Forget)
            }
            (Connecting | Open | Waiting, Input::Closed(_)) => {
                self.link = Waiting;
                Some(Action::RetryIn(self.backoff.next(random)))
            }
            (Waiting, Input::RetryDue) => {
                self.link = Connecting;
                Some(Action::Open)
            }
            (Idle | Refused, Input::Stop) => None,
            (_, Input::Stop) => {
                self.link = Idle;
                Some(Action::Close)
            }
            // Anything else is late news about a socket already given up on.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_says_hello_and_resends_the_outbox_once_welcomed() {
        let mut c = Connection::default();
        assert_eq!(c.handle(Input::Start, 0.5), Some(Action::Open));
        assert_eq!(c.link(), Link::Connecting);
        assert_eq!(c.handle(Input::Opened, 0.5), Some(Action::Hello));
        assert_eq!(c.handle(Input::Welcomed, 0.5), Some(Action::ResendOutbox));
        assert_eq!(c.link(), Link::Open);
    }

    #[test]
    fn a_drop_is_retried_with_growing_waits_and_a_welcome_resets_them() {
        let mut c = Connection::default();
        c.handle(Input::Start, 0.0);
        let mut waits = vec![];
        for _ in 0..4 {
            match c.handle(Input::Closed(1006), 0.0) {
                Some(Action::RetryIn(d)) => waits.push(d.as_millis()),
                other => panic!("{other:?}"),
            }
            assert_eq!(c.link(), Link::Waiting);
            assert_eq!(c.handle(Input::RetryDue, 0.0), Some(Action::Open));
        }
        assert_eq!(waits, [250, 500, 1000, 2000]);
        assert_eq!(c.failures(), 4);
        c.handle(Input::Opened, 0.0);
        c.handle(Input::Welcomed, 0.0);
        assert_eq!(c.failures(), 0);
        // A server restart (1001) is a drop like any other: retried, starting short.
        assert_eq!(
            c.handle(Input::Closed(close::GOING_AWAY), 0.0),
            Some(Action::RetryIn(Duration::from_millis(250)))
        );
    }

    #[test]
    fn a_refused_credential_is_forgotten_and_not_retried() {
        let mut c = Connection::default();
        c.handle(Input::Start, 0.5);
        c.handle(Input::Opened, 0.5);
        assert_eq!(
            c.handle(Input::Closed(close::UNAUTHORIZED), 0.5),
            Some(Action::Forget)
        );
        assert_eq!(c.link(), Link::Refused);
        assert_eq!(c.handle(Input::RetryDue, 0.5), None);
        assert_eq!(c.handle(Input::Closed(1006), 0.5), None);
        // A new credential starts afresh.
        assert_eq!(c.handle(Input::Start, 0.5), Some(Action::Open));
    }

    #[test]
    fn stopping_closes_and_late_news_changes_nothing() {
        let mut c = Connection::default();
        c.handle(Input::Start, 0.5);
        c.handle(Input::Opened, 0.5);
        c.handle(Input::Welcomed, 0.5);
        assert_eq!(c.handle(Input::Stop, 0.5), Some(Action::Close));
        assert_eq!(c.link(), Link::Idle);
        assert_eq!(c.handle(Input::Closed(close::NORMAL), 0.5), None);
        assert_eq!(c.handle(Input::RetryDue, 0.5), None);
        assert_eq!(c.handle(Input::Welcomed, 0.5), None);
        // Stopped while waiting for a retry: the retry never happens.
        let mut c = Connection::default();
        c.handle(Input::Start, 0.5);
        c.handle(Input::Closed(1006), 0.5);
        assert_eq!(c.handle(Input::Stop, 0.5), Some(Action::Close));
        assert_eq!(c.handle(Input::RetryDue, 0.5), None);
    }
}
