//! The local stack, the embedded default: both functions in one process with no AWS account.
//!
//! The user-service router is served over plain HTTP with in-memory ports. Its publisher
//! is an in-process bus that wraps each `UserCreated` in the envelope EventBridge would
//! deliver and hands it to the notification handler, whose email port writes RFC 5322
//! `.eml` files into an outbox folder. Everything else is the code that runs in Lambda.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use chrono::{SecondsFormat, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};
use notification::adapters::memory::InMemoryDedupStore;
use notification::email::WelcomeEmail;
use notification::ports::{EmailSender, SendError};
use notification::{DedupPolicy, EmailConfig, Notifier};
use serde_json::{json, Value};
use shared::UserCreated;
use user_service::adapters::memory::{InMemoryIdempotencyStore, InMemoryUserStore};
use user_service::ports::{EventPublisher, PublishError};
use user_service::{http, PublishPolicy, UserService};
use uuid::Uuid;

/// Sender address of local welcome emails.
pub const LOCAL_SENDER: &str = "welcome@localhost.localdomain";

/// Product name in local welcome emails.
pub const LOCAL_PRODUCT_NAME: &str = "EdTech Local";

/// The notification handler as the local stack runs it.
pub type LocalNotifier = Notifier<OutboxEmailSender, InMemoryDedupStore>;

/// Builds the in-memory router, whose created users reach the notification handler.
///
/// # Errors
/// When the outbox folder cannot be created.
pub fn in_memory_router(outbox: &Path) -> io::Result<Router> {
    let bus = InProcessBus::new(outbox)?;
    let service = UserService::new(
        InMemoryUserStore::new(),
        bus,
        InMemoryIdempotencyStore::new(),
        PublishPolicy::default(),
    );
    Ok(http::router(Arc::new(service)))
}

/// An email port that writes each message as an `.eml` file.
#[derive(Clone, Debug)]
pub struct OutboxEmailSender {
    folder: PathBuf,
    transport: AsyncFileTransport<Tokio1Executor>,
}

impl OutboxEmailSender {
    /// Writes into `folder`, creating it if needed.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn new(folder: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(folder)?;
        Ok(Self {
            folder: folder.to_owned(),
            transport: AsyncFileTransport::new(folder),
        })
    }
}

impl EmailSender for OutboxEmailSender {
    async fn send(&self, email: &WelcomeEmail) -> Result<String, SendError> {
        let rejected =
            |code: &str, error: Box<dyn std::error::Error + Send + Sync>| SendError::Rejected {
                code: code.to_owned(),
                source: error,
            };
        let from: Mailbox = email
            .from
            .parse()
            .map_err(|e| rejected("InvalidSender", Box::new(e)))?;
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| rejected("InvalidRecipient", Box::new(e)))?;
        let message = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(&email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| rejected("InvalidMessage", Box::new(e)))?;

        let id = self
            .transport
            .send(message)
            .await
            .map_err(|e| SendError::Transient(Box::new(e)))?;
        tracing::info!(file = %self.folder.join(format!("{id}.eml")).display(), "email written");
        Ok(id)
    }
}

/// The local stand-in for EventBridge: hands each event to the notification handler in
/// the background, as the bus would invoke the function asynchronously.
#[derive(Clone)]
pub struct InProcessBus {
    notifier: Arc<LocalNotifier>,
}

impl InProcessBus {
    /// A bus whose notification handler writes into `outbox`.
    ///
    /// # Errors
    /// When the outbox folder cannot be created.
    pub fn new(outbox: &Path) -> io::Result<Self> {
        let email = EmailConfig {
            sender: LOCAL_SENDER.to_owned(),
            product_name: LOCAL_PRODUCT_NAME.to_owned(),
        };
        let notifier = Notifier::new(
            OutboxEmailSender::new(outbox)?,
            InMemoryDedupStore::new(),
            email,
            DedupPolicy::default(),
        );
        Ok(Self {
            notifier: Arc::new(notifier),
        })
    }

    /// Delivers an event and waits for the handler, as a test or replay would.
    ///
    /// # Errors
    /// The handler's error.
    pub async fn deliver(
        &self,
        event: &UserCreated,
    ) -> Result<notification::Outcome, notification::NotificationError> {
        self.handle_envelope(envelope(event)).await
    }

    /// Hands a raw envelope, well-formed or not, to the notification handler.
    ///
    /// # Errors
    /// The handler's error.
    pub async fn handle_envelope(
        &self,
        envelope: Value,
    ) -> Result<notification::Outcome, notification::NotificationError> {
        self.notifier.handle(envelope).await
    }
}

impl EventPublisher for InProcessBus {
    async fn publish(&self, event: &UserCreated) -> Result<(), PublishError> {
        let bus = self.clone();
        let event = event.clone();
        // The handler logs its own outcome, as it does in Lambda.
        tokio::spawn(async move {
            let _ = bus.deliver(&event).await;
        });
        Ok(())
    }
}

/// Wraps an event in the envelope EventBridge delivers to a Lambda target.
fn envelope(event: &UserCreated) -> Value {
    json!({
        "version": "0",
        "id": Uuid::now_v7(),
        "detail-type": shared::DETAIL_TYPE,
        "source": shared::SOURCE,
        "account": "000000000000",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "local",
        "resources": [],
        "detail": event,
    })
}
