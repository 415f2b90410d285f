//! The welcome email: subject, text part and HTML part, rendered from the event.
//!
//! Names come from users, so they appear only in the bodies, never in a header, and are
//! HTML-escaped in the HTML part.

use shared::UserCreatedPayload;

use crate::config::EmailConfig;

/// A rendered welcome email, ready for any [`crate::ports::EmailSender`].
#[derive(Clone, PartialEq, Eq)]
pub struct WelcomeEmail {
    /// The verified sender address.
    pub from: String,
    /// The new user's address.
    pub to: String,
    /// Subject line; built from configuration only.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

impl std::fmt::Debug for WelcomeEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WelcomeEmail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl WelcomeEmail {
    /// Renders the welcome email for a new user.
    pub fn render(payload: &UserCreatedPayload, config: &EmailConfig) -> Self {
        let product = &config.product_name;
        let first_name = &payload.profile.first_name;
        let html_product = html_escape::encode_text(product);
        let html_name = html_escape::encode_text(first_name);

        Self {
            from: config.sender.clone(),
            to: payload.email.clone(),
            subject: format!("Welcome to {product}"),
            text: format!(
                "Hi {first_name},\n\n\
                 Welcome to {product}! Your account is ready, and you can sign in any time.\n\n\
                 The {product} team\n"
            ),
            html: format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
                 <title>Welcome to {html_product}</title></head>\n<body>\n\
                 <p>Hi {html_name},</p>\n\
                 <p>Welcome to {html_product}! Your account is ready, and you can sign in any \
                 time.</p>\n\
                 <p>The {html_product} team</p>\n</body>\n</html>\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::Profile;
    use uuid::Uuid;

    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            sender: "hello@example.com".into(),
            product_name: "Acme & Co".into(),
        }
    }

    fn payload(first_name: &str) -> UserCreatedPayload {
        UserCreatedPayload {
            user_id: Uuid::nil(),
            email: "ada@example.com".into(),
            profile: Profile {
                first_name: first_name.into(),
                last_name: "Lovelace".into(),
            },
        }
    }

    #[test]
    fn greets_the_user_by_first_name_in_both_parts() {
        let email = WelcomeEmail::render(&payload("Ada"), &config());

        assert_eq!(email.to, "ada@example.com");
        assert_eq!(email.from, "hello@example.com");
        assert_eq!(email.subject, "Welcome to Acme & Co");
        assert!(email.text.starts_with("Hi Ada,"));
        assert!(email.html.contains("<p>Hi Ada,</p>"));
        assert!(email.html.contains("Acme &amp; Co"));
    }

    #[test]
    fn escapes_markup_in_names_for_the_html_part() {
        let email = WelcomeEmail::render(&payload("<script>alert(1)</script>"), &config());

        assert!(!email.html.contains("<script>"));
        assert!(email.html.contains("&lt;script&gt;"));
        assert!(
            email.text.contains("<script>"),
            "the text part shows the name as typed"
        );
    }

    #[test]
    fn keeps_names_out_of_the_subject() {
        let email = WelcomeEmail::render(&payload("Mallory"), &config());

        assert!(!email.subject.contains("Mallory"));
    }

    #[test]
    fn renders_any_script() {
        let email = WelcomeEmail::render(&payload("李"), &config());

        assert!(email.text.contains("Hi 李,") && email.html.contains("Hi 李,"));
    }
}
