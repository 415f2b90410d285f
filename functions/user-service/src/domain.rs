//! Users as the service knows them, and the view of a user the API returns.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use shared::{Profile, UserCreated, UserCreatedPayload};
use uuid::Uuid;

/// A validated, normalised request to create a user.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Trimmed, lower-case email address.
    pub email: String,
    /// Trimmed names.
    pub profile: Profile,
}

/// A stored user, with the state of its `UserCreated` event.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    /// Trimmed, lower-case email address; unique across users.
    pub email: String,
    /// Trimmed names.
    pub profile: Profile,
    /// When the user was created; also the event's `occurredAt`.
    pub created_at: DateTime<Utc>,
    /// Chosen once at creation and reused by every publish attempt.
    pub event_id: Uuid,
    /// Whether the event reached the bus.
    pub event_published: bool,
    /// Until when one request holds the right to publish the pending event.
    pub publish_claimed_until: Option<DateTime<Utc>>,
}

impl User {
    /// A new user whose event is pending and claimed by the creating request until `until`.
    pub fn new(new: NewUser, now: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            email: new.email,
            profile: new.profile,
            created_at: now,
            event_id: Uuid::now_v7(),
            event_published: false,
            publish_claimed_until: Some(until),
        }
    }

    /// The user's `UserCreated` event; the same ids and time on every call.
    pub fn created_event(&self, correlation_id: &str) -> UserCreated {
        let payload = UserCreatedPayload {
            user_id: self.id,
            email: self.email.clone(),
            profile: self.profile.clone(),
        };
        UserCreated::new(self.event_id, self.created_at, correlation_id, payload)
    }

    /// Whether a create request asks for exactly this user.
    pub fn matches(&self, request: &NewUser) -> bool {
        self.email == request.email && self.profile == request.profile
    }
}

// Debug output can reach logs, so personal data is redacted there.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .field("event_published", &self.event_published)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser").finish_non_exhaustive()
    }
}

/// The user as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView<'a> {
    id: Uuid,
    email: &'a str,
    profile: &'a Profile,
    created_at: String,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id,
            email: &user.email,
            profile: &user.profile,
            created_at: user.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}
