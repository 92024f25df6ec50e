//! Email out: the MIME message every email channel sends, and delivery over
//! SMTP with lettre (rustls; STARTTLS or implicit TLS; a connection pool).

use async_trait::async_trait;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Channel, Message, SendError};

/// `Auto-Submitted: auto-replied` (RFC 3834 §5): tells other robots not to
/// answer, so two systems never loop.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// `X-Auto-Response-Suppress: All`: asks Exchange not to send
/// out-of-office replies to our mail.
#[derive(Debug, Clone)]
struct AutoResponseSuppress;

impl Header for AutoResponseSuppress {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Auto-Response-Suppress")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "All".into())
    }
}

/// The email for `msg`: text and HTML alternatives, our Message-ID, the
/// signed Reply-To of a page, and the headers that stop auto-reply loops.
pub fn build_email(msg: &Message, from: &Mailbox, id_domain: &str) -> Result<lettre::Message, SendError> {
    let to: Mailbox = msg.to.parse().map_err(|e| SendError::Permanent(format!("bad address {:?}: {e}", msg.to)))?;
    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(msg.body.text.clone());
    let body = match &msg.body.html {
        Some(html) => MultiPart::alternative()
            .singlepart(text)
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
        None => MultiPart::mixed().singlepart(text),
    };
    let id = msg
        .message_id
        .clone()
        .unwrap_or_else(|| format!("tocsin.{}.{}@{id_domain}", msg.case.map_or(0, |n| n.0), msg.page_id));
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(msg.body.subject.clone())
        .message_id(Some(format!("<{id}>")));
    // A reply a person wrote is no automatic message (RFC 3834 §5): the
    // customer's autoresponder may answer it, as it would any person's mail.
    if !msg.kind.written_by_a_person() {
        builder = builder.header(AutoSubmitted).header(AutoResponseSuppress);
    }
    // In the customer's thread: it answers their latest message and
    // names the whole conversation (RFC 5322 §3.6.4).
    if let Some(last) = msg.answers.last() {
        builder = builder.in_reply_to(format!("<{last}>"));
        let all: Vec<String> = msg.answers.iter().map(|id| format!("<{id}>")).collect();
        builder = builder.references(all.join(" "));
    }
    if let Some(reply_to) = &msg.reply_to {
        let mailbox: Mailbox = reply_to.parse().map_err(|e| SendError::Permanent(format!("bad reply address: {e}")))?;
        builder = builder.reply_to(mailbox);
    }
    builder.multipart(body).map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
}

/// Sends email through an SMTP server.
pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    id_domain: String,
}

impl SmtpEmail {
    /// `url` is `smtp://host[:port]` (STARTTLS when `?tls=required`, else
    /// plain) or `smtps://host[:port]` (implicit TLS), as lettre reads them;
    /// credentials come from the environment, never the URL.
    pub fn new(
        url: &str,
        credentials: Option<(String, String)>,
        from: Mailbox,
        id_domain: &str,
    ) -> Result<Self, String> {
        if url.contains('@') {
            return Err("put no credentials in [email] transport; name their environment variables in smtp_user_env and smtp_password_env".into());
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("[email] transport {url:?}: {e}"))?;
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self { transport: builder.build(), from, id_domain: id_domain.to_owned() })
    }
}

#[async_trait]
impl Channel for SmtpEmail {
    async fn send(&self, msg: &Message) -> Result<Option<String>, SendError> {
        let email = build_email(msg, &self.from, &self.id_domain)?;
        match self.transport.send(email).await {
            Ok(response) => Ok(Some(response.message().collect::<Vec<_>>().join(" "))),
            // RFC 5321 §4.2.1: 5yz is permanent; 4yz and broken connections
            // are worth another try.
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::Temporary(format!("SMTP: {e}"))),
        }
    }
}
