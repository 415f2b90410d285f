//! In-memory adapters for the local stack and tests: the same semantics as the DynamoDB
//! ones (atomic email uniqueness, publish claims, first-write-wins idempotency), held in a
//! mutex for the life of the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use shared::UserCreated;
use uuid::Uuid;

use crate::domain::User;
use crate::ports::{
    EventPublisher, IdempotencyStore, PublishError, StoreError, StoredResponse, UserStore,
};

/// Users kept in memory.
#[derive(Debug, Default)]
pub struct InMemoryUserStore {
    state: Mutex<Users>,
}

#[derive(Debug, Default)]
struct Users {
    by_id: HashMap<Uuid, User>,
    by_email: HashMap<String, Uuid>,
}

impl InMemoryUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no user is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Users> {
        lock(&self.state)
    }
}

impl UserStore for InMemoryUserStore {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let mut users = self.lock();
        if users.by_email.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        users.by_email.insert(user.email.clone(), user.id);
        users.by_id.insert(user.id, user.clone());
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(self.lock().by_id.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let users = self.lock();
        Ok(users
            .by_email
            .get(email)
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn claim_publish(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut users = self.lock();
        let Some(user) = users.by_id.get_mut(&id) else {
            return Ok(false);
        };
        let free = user
            .publish_claimed_until
            .is_none_or(|claimed| claimed < now);
        if user.event_published || !free {
            return Ok(false);
        }
        user.publish_claimed_until = Some(until);
        Ok(true)
    }

    async fn mark_published(&self, id: Uuid) -> Result<(), StoreError> {
        if let Some(user) = self.lock().by_id.get_mut(&id) {
            user.event_published = true;
            user.publish_claimed_until = None;
        }
        Ok(())
    }

    async fn release_publish(&self, id: Uuid) -> Result<(), StoreError> {
        if let Some(user) = self.lock().by_id.get_mut(&id) {
            user.publish_claimed_until = None;
        }
        Ok(())
    }
}

/// Idempotent responses kept in memory until they expire.
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyStore {
    entries: Mutex<HashMap<String, (StoredResponse, DateTime<Utc>)>>,
}

impl InMemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (StoredResponse, DateTime<Utc>)>> {
        lock(&self.entries)
    }
}

impl IdempotencyStore for InMemoryIdempotencyStore {
    async fn get(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let now = Utc::now();
        Ok(self
            .lock()
            .get(key)
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(response, _)| response.clone()))
    }

    async fn put(
        &self,
        key: &str,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut entries = self.lock();
        entries.retain(|_, (_, expires)| *expires > now);
        entries
            .entry(key.to_owned())
            .or_insert_with(|| (response.clone(), expires_at));
        Ok(())
    }
}

/// A publisher that records what it is given, for tests; failures can be scripted.
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    published: Mutex<Vec<UserCreated>>,
    scripted_failures: Mutex<VecDeque<PublishError>>,
}

impl RecordingPublisher {
    /// A publisher that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next attempt fail with `error`; calls queue up in order.
    pub fn fail_next(&self, error: PublishError) {
        lock(&self.scripted_failures).push_back(error);
    }

    /// Every event published so far, in order.
    pub fn published(&self) -> Vec<UserCreated> {
        lock(&self.published).clone()
    }
}

impl EventPublisher for RecordingPublisher {
    async fn publish(&self, event: &UserCreated) -> Result<(), PublishError> {
        if let Some(error) = lock(&self.scripted_failures).pop_front() {
            return Err(error);
        }
        lock(&self.published).push(event.clone());
        Ok(())
    }
}

// A panic while holding a lock cannot leave these maps half-updated (every mutation is a
// single insert or field write), so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
