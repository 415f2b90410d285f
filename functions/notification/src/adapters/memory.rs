//! In-memory adapters for the local stack and tests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::email::WelcomeEmail;
use crate::ports::{Claim, DedupError, DedupStore, EmailSender, SendError};

/// Processed event ids kept in memory, with the same claim rules as the DynamoDB store.
#[derive(Debug, Default)]
pub struct InMemoryDedupStore {
    records: Mutex<HashMap<Uuid, Record>>,
}

#[derive(Clone, Copy, Debug)]
enum Record {
    InProgress { until: DateTime<Utc> },
    Completed,
    Failed,
}

impl InMemoryDedupStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl DedupStore for InMemoryDedupStore {
    async fn claim(
        &self,
        event_id: Uuid,
        _user_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim, DedupError> {
        let mut records = lock(&self.records);
        let claim = match records.get(&event_id) {
            Some(Record::Completed) => Claim::Completed,
            Some(Record::Failed) => Claim::Failed,
            Some(Record::InProgress { until }) if *until >= now => Claim::InProgress,
            Some(Record::InProgress { .. }) | None => Claim::Acquired,
        };
        if claim == Claim::Acquired {
            records.insert(event_id, Record::InProgress { until });
        }
        Ok(claim)
    }

    async fn complete(
        &self,
        event_id: Uuid,
        _message_id: &str,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), DedupError> {
        lock(&self.records).insert(event_id, Record::Completed);
        Ok(())
    }

    async fn fail(
        &self,
        event_id: Uuid,
        _reason: &str,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), DedupError> {
        lock(&self.records).insert(event_id, Record::Failed);
        Ok(())
    }

    async fn release(&self, event_id: Uuid) -> Result<(), DedupError> {
        let mut records = lock(&self.records);
        if let Some(Record::InProgress { .. }) = records.get(&event_id) {
            records.remove(&event_id);
        }
        Ok(())
    }
}

/// A sender that records what it is given, for tests; failures can be scripted.
#[derive(Debug, Default)]
pub struct RecordingEmailSender {
    sent: Mutex<Vec<WelcomeEmail>>,
    scripted_failures: Mutex<Vec<SendError>>,
    attempts: Mutex<usize>,
}

impl RecordingEmailSender {
    /// A sender that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next attempt fail with `error`; calls queue up in order.
    pub fn fail_next(&self, error: SendError) {
        lock(&self.scripted_failures).insert(0, error);
    }

    /// Every email sent so far, in order.
    pub fn sent(&self) -> Vec<WelcomeEmail> {
        lock(&self.sent).clone()
    }

    /// How many sends were attempted, failed ones included.
    pub fn attempts(&self) -> usize {
        *lock(&self.attempts)
    }
}

impl EmailSender for RecordingEmailSender {
    async fn send(&self, email: &WelcomeEmail) -> Result<String, SendError> {
        *lock(&self.attempts) += 1;
        if let Some(error) = lock(&self.scripted_failures).pop() {
            return Err(error);
        }
        let mut sent = lock(&self.sent);
        sent.push(email.clone());
        Ok(format!("recorded-{}", sent.len()))
    }
}

// Every mutation above is a single insert or removal, so a poisoned lock is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
