//! The built-in schemes by their config name.

use super::*;

/// The schemes this build can construct from their config name alone.
///
/// `hmac` ([`GenericHmac`]) is not listed: it needs [`GenericOptions`].
pub const SCHEME_NAMES: &[&str] = &[
    "fynapse",
    "stripe",
    "standard-webhooks",
    "github",
    "shopify",
    "slack",
    "gitlab",
    "dropbox",
    "intercom",
    "typeform",
    "woocommerce",
    "pagerduty",
    "vercel",
    "sentry",
    "bitbucket",
    "zoom",
    "paddle",
    "calendly",
    "zendesk",
    "linear",
    "mailgun",
    "twilio",
    "square",
    "hubspot",
    "discord",
    "sendgrid",
];

/// Looks a built-in scheme up by its config name. `None` for unknown names
/// and for `hmac`, which is built with [`GenericHmac::new`].
pub fn scheme_by_name(name: &str) -> Option<Box<dyn Scheme>> {
    match name {
        "fynapse" => Some(Box::new(Fynapse)),
        "stripe" => Some(Box::new(Stripe)),
        "standard-webhooks" => Some(Box::new(StandardWebhooks)),
        "github" => Some(Box::new(GitHub)),
        "shopify" => Some(Box::new(Shopify)),
        "slack" => Some(Box::new(Slack)),
        "gitlab" => Some(Box::new(GitLab)),
        "dropbox" => Some(Box::new(Dropbox)),
        "intercom" => Some(Box::new(Intercom)),
        "typeform" => Some(Box::new(Typeform)),
        "woocommerce" => Some(Box::new(WooCommerce)),
        "pagerduty" => Some(Box::new(PagerDuty)),
        "vercel" => Some(Box::new(Vercel)),
        "sentry" => Some(Box::new(Sentry)),
        "bitbucket" => Some(Box::new(Bitbucket)),
        "zoom" => Some(Box::new(Zoom)),
        "paddle" => Some(Box::new(Paddle)),
        "calendly" => Some(Box::new(Calendly)),
        "zendesk" => Some(Box::new(Zendesk)),
        "linear" => Some(Box::new(Linear)),
        "mailgun" => Some(Box::new(Mailgun)),
        "twilio" => Some(Box::new(Twilio)),
        "square" => Some(Box::new(Square)),
        "hubspot" => Some(Box::new(HubSpot)),
        "discord" => Some(Box::new(Discord)),
        "sendgrid" => Some(Box::new(SendGrid)),
        _ => None,
    }
}
