//! Newtypes for the identifiers that cross the wire, so a conversation id is never passed
//! where a visitor id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// The stable visitor id; it is the Rasa `sender`. The widget generates it and keeps it
    /// in `localStorage`.
    VisitorId
);
id_type!(
    /// A conversation (one per visitor in this version), assigned by the server.
    ConversationId
);
id_type!(
    /// An agent account, assigned by the server.
    AgentId
);
id_type!(
    /// A client-generated message id, reused on every retry so the server can de-duplicate.
    ClientMsgId
);
