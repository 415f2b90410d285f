//! DynamoDB de-duplication store: one item per event id (`eventId`), with `status`
//! `IN_PROGRESS` (plus `claimedUntil`, epoch ms), `COMPLETED` or `FAILED`, and `expiresAt`
//! (epoch seconds), the table's TTL attribute.
//!
//! A claim is a conditional put that succeeds only for a new id or an expired
//! `IN_PROGRESS` one; when it fails, a consistent read says which state the id is in.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::{Claim, DedupError, DedupStore};

const KEY: &str = "eventId";
const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";
const FAILED: &str = "FAILED";

/// Processed event ids in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoDbDedupStore {
    client: Client,
    table: String,
}

impl DynamoDbDedupStore {
    /// A store over `table`, using a client built once at start-up.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn current(&self, event_id: Uuid) -> Result<Claim, DedupError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(event_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let status = output
            .item
            .as_ref()
            .and_then(|item| item.get("status"))
            .and_then(|s| s.as_s().ok());

        Ok(match status.map(String::as_str) {
            Some(COMPLETED) => Claim::Completed,
            Some(FAILED) => Claim::Failed,
            // Still claimed, or released between our put and this read: either way another
            // delivery is at work or a retry will find the id free.
            _ => Claim::InProgress,
        })
    }

    async fn finish(
        &self,
        event_id: Uuid,
        status: &str,
        detail: (&str, &str),
        expires_at: DateTime<Utc>,
    ) -> Result<(), DedupError> {
        let (name, value) = detail;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(event_id.to_string()))
            .update_expression(
                "SET #status = :status, #detail = :detail, expiresAt = :expires REMOVE claimedUntil",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#detail", name)
            .expression_attribute_values(":status", AttributeValue::S(status.to_owned()))
            .expression_attribute_values(":detail", AttributeValue::S(value.to_owned()))
            .expression_attribute_values(":expires", epoch_seconds(expires_at))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

impl DedupStore for DynamoDbDedupStore {
    async fn claim(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim, DedupError> {
        let item = HashMap::from([
            (KEY.to_owned(), AttributeValue::S(event_id.to_string())),
            (
                "status".to_owned(),
                AttributeValue::S(IN_PROGRESS.to_owned()),
            ),
            ("userId".to_owned(), AttributeValue::S(user_id.to_string())),
            ("claimedUntil".to_owned(), epoch_millis(until)),
            // An abandoned claim still disappears one day after it lapses.
            (
                "expiresAt".to_owned(),
                epoch_seconds(until + chrono::Duration::days(1)),
            ),
        ]);

        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(eventId) OR (#status = :in_progress AND claimedUntil < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .expression_attribute_values(":now", epoch_millis(now))
            .send()
            .await;

        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.current(event_id).await
            }
            Err(error) => Err(store_error(error)),
        }
    }

    async fn complete(
        &self,
        event_id: Uuid,
        message_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DedupError> {
        self.finish(event_id, COMPLETED, ("messageId", message_id), expires_at)
            .await
    }

    async fn fail(
        &self,
        event_id: Uuid,
        reason: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DedupError> {
        self.finish(event_id, FAILED, ("reason", reason), expires_at)
            .await
    }

    async fn release(&self, event_id: Uuid) -> Result<(), DedupError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(event_id.to_string()))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .send()
            .await;
        match result {
            Err(error)
                if !error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(store_error(error))
            }
            _ => Ok(()),
        }
    }
}

fn epoch_millis(time: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(time.timestamp_millis().to_string())
}

fn epoch_seconds(time: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(time.timestamp().to_string())
}

fn store_error<E, R>(error: SdkError<E, R>) -> DedupError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    DedupError(Box::new(error))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{mock, Rule};
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::RecordingEmailSender;
    use crate::{DedupPolicy, EmailConfig, Notifier, Outcome};

    fn store(rules: &[&Rule]) -> DynamoDbDedupStore {
        let config = match rules {
            [put] => testkit::mock_config!(aws_sdk_dynamodb, put),
            [put, get] => testkit::mock_config!(aws_sdk_dynamodb, put, get),
            _ => unreachable!("tests script one or two calls"),
        };
        DynamoDbDedupStore::new(Client::from_conf(config), "processed")
    }

    fn condition_failed() -> Rule {
        mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        })
    }

    fn stored(status: &'static str) -> Rule {
        mock!(Client::get_item).then_output(move || {
            GetItemOutput::builder()
                .item(KEY, AttributeValue::S("id".into()))
                .item("status", AttributeValue::S(status.into()))
                .build()
        })
    }

    fn claim(
        store: &DynamoDbDedupStore,
    ) -> impl std::future::Future<Output = Result<Claim, DedupError>> + '_ {
        let now = Utc::now();
        store.claim(
            Uuid::nil(),
            Uuid::nil(),
            now,
            now + chrono::Duration::seconds(45),
        )
    }

    #[tokio::test]
    async fn claims_a_new_id_with_a_conditional_put() {
        let put = mock!(Client::put_item)
            .match_requests(|request| {
                request
                    .condition_expression()
                    .is_some_and(|c| c.starts_with("attribute_not_exists(eventId)"))
                    && request
                        .item()
                        .and_then(|item| item.get("status"))
                        .and_then(|s| s.as_s().ok())
                        == Some(&IN_PROGRESS.to_owned())
            })
            .then_output(|| PutItemOutput::builder().build());

        assert_eq!(
            claim(&store(&[&put])).await.expect("claimed"),
            Claim::Acquired
        );
    }

    #[tokio::test]
    async fn reads_the_state_of_an_id_that_cannot_be_claimed() {
        for (status, expected) in [
            (COMPLETED, Claim::Completed),
            (FAILED, Claim::Failed),
            (IN_PROGRESS, Claim::InProgress),
        ] {
            let (put, get) = (condition_failed(), stored(status));

            assert_eq!(claim(&store(&[&put, &get])).await.expect("read"), expected);
        }
    }

    #[tokio::test]
    async fn a_completed_id_sends_nothing() {
        let (put, get) = (condition_failed(), stored(COMPLETED));
        let sender = Arc::new(RecordingEmailSender::new());
        let email = EmailConfig {
            sender: "hello@example.com".into(),
            product_name: "Acme".into(),
        };
        let notifier = Notifier::new(
            Arc::clone(&sender),
            store(&[&put, &get]),
            email,
            DedupPolicy::default(),
        );
        let detail: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../shared/tests/fixtures/user-created.detail.json"
        ))
        .expect("fixture");

        let outcome = notifier
            .handle(json!({ "source": shared::SOURCE, "detail-type": shared::DETAIL_TYPE, "detail": detail }))
            .await
            .expect("no-op");

        assert_eq!(outcome, Outcome::Duplicate);
        assert_eq!(sender.attempts(), 0);
    }
}
