//! DynamoDB adapters: users, email claims and idempotency records in one table keyed by
//! `pk` (`USER#<id>`, `EMAIL#<email>`, `IDEMPOTENCY#<key>`).
//!
//! A user and its email claim are written in one `TransactWriteItems`, each put conditional
//! on the key being new, so two creates with one email can never both succeed. Idempotency
//! records carry `expiresAt` (epoch seconds), the table's TTL attribute; since TTL deletion
//! is lazy, reads also check it.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use shared::Profile;
use uuid::Uuid;

use crate::domain::User;
use crate::ports::{IdempotencyStore, StoreError, StoredResponse, UserStore};

type Item = HashMap<String, AttributeValue>;

const KEY: &str = "pk";

/// Users in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoDbUserStore {
    client: Client,
    table: String,
}

impl DynamoDbUserStore {
    /// A store over `table`, using a client built once at start-up.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get_item(&self, key: String) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// Runs an update on a user; a failed condition means "no" rather than an error.
    async fn update_user(
        &self,
        id: Uuid,
        update: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(user_key(id)))
            .update_expression(update)
            .condition_expression(condition.unwrap_or("attribute_exists(pk)"));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }

        match request.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl UserStore for DynamoDbUserStore {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let email_claim = Item::from([
            (KEY.to_owned(), AttributeValue::S(email_key(&user.email))),
            ("userId".to_owned(), AttributeValue::S(user.id.to_string())),
        ]);

        let result = self
            .client
            .transact_write_items()
            .transact_items(self.put_new(user_item(user))?)
            .transact_items(self.put_new(email_claim)?)
            .send()
            .await;

        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Err(StoreError::EmailTaken),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.get_item(user_key(id))
            .await?
            .map(|item| user_from_item(&item))
            .transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let Some(claim) = self.get_item(email_key(email)).await? else {
            return Ok(None);
        };
        let id = parse_uuid(&claim, "userId")?;
        self.get(id).await
    }

    async fn claim_publish(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_user(
            id,
            "SET publishClaimedUntil = :until",
            Some(
                "attribute_exists(pk) AND eventPublished = :false AND \
                 (attribute_not_exists(publishClaimedUntil) OR publishClaimedUntil < :now)",
            ),
            vec![
                (":until", millis(until)),
                (":now", millis(now)),
                (":false", AttributeValue::Bool(false)),
            ],
        )
        .await
    }

    async fn mark_published(&self, id: Uuid) -> Result<(), StoreError> {
        self.update_user(
            id,
            "SET eventPublished = :true REMOVE publishClaimedUntil",
            None,
            vec![(":true", AttributeValue::Bool(true))],
        )
        .await
        .map(drop)
    }

    async fn release_publish(&self, id: Uuid) -> Result<(), StoreError> {
        self.update_user(id, "REMOVE publishClaimedUntil", None, vec![])
            .await
            .map(drop)
    }
}

impl DynamoDbUserStore {
    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// `Idempotency-Key` responses in the users table.
#[derive(Clone, Debug)]
pub struct DynamoDbIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoDbIdempotencyStore {
    /// A store over `table`, using a client built once at start-up.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl IdempotencyStore for DynamoDbIdempotencyStore {
    async fn get(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(idempotency_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        if number(&item, "expiresAt")? <= Utc::now().timestamp() {
            return Ok(None);
        }

        Ok(Some(StoredResponse {
            fingerprint: string(&item, "fingerprint")?.to_owned(),
            status: u16::try_from(number(&item, "status")?)
                .map_err(|_| StoreError::Corrupt("status out of range".into()))?,
            location: item.get("location").and_then(|v| v.as_s().ok()).cloned(),
            body: string(&item, "body")?.to_owned(),
        }))
    }

    async fn put(
        &self,
        key: &str,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = Item::from([
            (KEY.to_owned(), AttributeValue::S(idempotency_key(key))),
            (
                "fingerprint".to_owned(),
                AttributeValue::S(response.fingerprint.clone()),
            ),
            (
                "status".to_owned(),
                AttributeValue::N(response.status.to_string()),
            ),
            ("body".to_owned(), AttributeValue::S(response.body.clone())),
            (
                "expiresAt".to_owned(),
                AttributeValue::N(expires_at.timestamp().to_string()),
            ),
        ]);
        if let Some(location) = &response.location {
            item.insert("location".to_owned(), AttributeValue::S(location.clone()));
        }

        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(
                ":now",
                AttributeValue::N(Utc::now().timestamp().to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone stored a response first; theirs is the one to replay.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

fn user_key(id: Uuid) -> String {
    format!("USER#{id}")
}

fn email_key(email: &str) -> String {
    format!("EMAIL#{email}")
}

fn idempotency_key(key: &str) -> String {
    format!("IDEMPOTENCY#{key}")
}

fn millis(time: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(time.timestamp_millis().to_string())
}

fn user_item(user: &User) -> Item {
    let mut item = Item::from([
        (KEY.to_owned(), AttributeValue::S(user_key(user.id))),
        ("userId".to_owned(), AttributeValue::S(user.id.to_string())),
        ("email".to_owned(), AttributeValue::S(user.email.clone())),
        (
            "firstName".to_owned(),
            AttributeValue::S(user.profile.first_name.clone()),
        ),
        (
            "lastName".to_owned(),
            AttributeValue::S(user.profile.last_name.clone()),
        ),
        (
            "createdAt".to_owned(),
            AttributeValue::S(user.created_at.to_rfc3339()),
        ),
        (
            "eventId".to_owned(),
            AttributeValue::S(user.event_id.to_string()),
        ),
        (
            "eventPublished".to_owned(),
            AttributeValue::Bool(user.event_published),
        ),
    ]);
    if let Some(until) = user.publish_claimed_until {
        item.insert("publishClaimedUntil".to_owned(), millis(until));
    }
    item
}

fn user_from_item(item: &Item) -> Result<User, StoreError> {
    let created_at = DateTime::parse_from_rfc3339(string(item, "createdAt")?)
        .map_err(|_| StoreError::Corrupt("createdAt is not RFC 3339".into()))?
        .with_timezone(&Utc);
    let publish_claimed_until = match item.get("publishClaimedUntil") {
        None => None,
        Some(_) => DateTime::from_timestamp_millis(number(item, "publishClaimedUntil")?),
    };

    Ok(User {
        id: parse_uuid(item, "userId")?,
        email: string(item, "email")?.to_owned(),
        profile: Profile {
            first_name: string(item, "firstName")?.to_owned(),
            last_name: string(item, "lastName")?.to_owned(),
        },
        created_at,
        event_id: parse_uuid(item, "eventId")?,
        event_published: *item
            .get("eventPublished")
            .and_then(|value| value.as_bool().ok())
            .ok_or_else(|| corrupt("eventPublished"))?,
        publish_claimed_until,
    })
}

fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(name))
}

fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt(name))
}

fn parse_uuid(item: &Item, name: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(string(item, name)?).map_err(|_| corrupt(name))
}

fn corrupt(name: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute {name} is missing or has the wrong type"))
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

fn is_condition_failure<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    else {
        return false;
    };
    cancelled
        .cancellation_reasons()
        .iter()
        .any(|reason| reason.code() == Some("ConditionalCheckFailed"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_smithy_mocks::{mock, Rule};
    use http::StatusCode;

    use super::*;
    use crate::adapters::memory::{InMemoryIdempotencyStore, RecordingPublisher};
    use crate::adapters::post_user;
    use crate::http::router;
    use crate::{PublishPolicy, UserService};
    use testkit::mock_config;

    const USER_ID: &str = "0193a5a0-0000-7000-8000-000000000001";

    fn cancelled(codes: &'static [&'static str]) -> Rule {
        mock!(Client::transact_write_items).then_error(move || {
            let mut cancelled = TransactionCanceledException::builder();
            for code in codes {
                cancelled = cancelled
                    .cancellation_reasons(CancellationReason::builder().code(*code).build());
            }
            TransactWriteItemsError::TransactionCanceledException(cancelled.build())
        })
    }

    fn existing_user() -> Item {
        let user = User {
            id: Uuid::try_parse(USER_ID).expect("id"),
            email: "ada@example.com".into(),
            profile: Profile {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
            },
            created_at: Utc::now(),
            event_id: Uuid::now_v7(),
            event_published: true,
            publish_claimed_until: None,
        };
        user_item(&user)
    }

    #[tokio::test]
    async fn a_failed_uniqueness_condition_is_a_409() {
        let transaction = cancelled(&["None", "ConditionalCheckFailed"]);
        let claim = mock!(Client::get_item)
            .match_requests(|request| {
                request.key().and_then(|k| k.get(KEY))
                    == Some(&AttributeValue::S("EMAIL#ada@example.com".into()))
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .item(KEY, AttributeValue::S("EMAIL#ada@example.com".into()))
                    .item("userId", AttributeValue::S(USER_ID.into()))
                    .build()
            });
        let user = mock!(Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(existing_user()))
                .build()
        });
        let client = Client::from_conf(mock_config!(aws_sdk_dynamodb, &transaction, &claim, &user));
        let publisher = Arc::new(RecordingPublisher::new());
        let service = UserService::new(
            DynamoDbUserStore::new(client, "users"),
            Arc::clone(&publisher),
            InMemoryIdempotencyStore::new(),
            PublishPolicy::default(),
        );

        let (status, problem) = post_user(
            &router(Arc::new(service)),
            r#"{"email":"ada@example.com","profile":{"firstName":"Ada","lastName":"Lovelace"}}"#,
        )
        .await;

        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert_eq!(problem["type"], "urn:problem-type:user-service:email-taken");
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn a_cancellation_for_another_reason_is_not_a_conflict() {
        let transaction = cancelled(&["ThrottlingError", "None"]);
        let store = DynamoDbUserStore::new(
            Client::from_conf(mock_config!(aws_sdk_dynamodb, &transaction)),
            "users",
        );
        let now = Utc::now();
        let user = User::new(
            crate::domain::NewUser {
                email: "ada@example.com".into(),
                profile: Profile {
                    first_name: "Ada".into(),
                    last_name: "Lovelace".into(),
                },
            },
            now,
            now,
        );

        let error = store.insert(&user).await.expect_err("throttled");

        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }

    #[test]
    fn a_user_survives_the_round_trip_through_an_item() {
        let item = existing_user();

        let user = user_from_item(&item).expect("parses");

        assert_eq!(user_item(&user), item);
    }
}
