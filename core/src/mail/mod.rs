//! Reading one inbound message: who sent it, what it answers, what it says,
//! and whether a machine sent it. Pure: bytes in, facts out.

pub mod attachments;
pub mod auth;
pub mod intake;
pub mod strip;

use std::sync::LazyLock;

use mail_parser::{HeaderValue, MessageParser};
use regex::Regex;

use crate::case::CaseNumber;
use strip::strip_reply;

/// Longest text kept for the timeline, in characters (the raw message is
/// kept whole).
pub use crate::limits::MAX_TEXT;

/// What became of an inbox row. Stored as its word ([`InboxStatus::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboxStatus {
    /// Committed, not filed yet: the inbox worker files it.
    Pending,
    /// It opened or joined a case.
    Filed,
    /// Its Message-ID was received before; nothing changed.
    Duplicate,
    /// An auto-reply, bounce or list mail: opened nothing.
    Automatic,
    /// It could not be read; kept raw and flagged.
    Unusable,
    /// An engineer's reply carrying a command.
    Command,
    /// A reply token used by someone it was not given to.
    Refused,
    /// It would have opened a case past a new-case limit
    /// ([`intake`]) and its sender has no open case: kept raw, no case, no
    /// receipt, for a manager to look at.
    Held,
}

impl InboxStatus {
    pub const ALL: [InboxStatus; 8] = [
        InboxStatus::Pending,
        InboxStatus::Filed,
        InboxStatus::Duplicate,
        InboxStatus::Automatic,
        InboxStatus::Unusable,
        InboxStatus::Command,
        InboxStatus::Refused,
        InboxStatus::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Pending => "pending",
            InboxStatus::Filed => "filed",
            InboxStatus::Duplicate => "duplicate",
            InboxStatus::Automatic => "automatic",
            InboxStatus::Unusable => "unusable",
            InboxStatus::Command => "command",
            InboxStatus::Refused => "refused",
            InboxStatus::Held => "held",
        }
    }
}

impl std::fmt::Display for InboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InboxStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| format!("unknown inbox status {s:?}"))
    }
}

/// What the sending server said in the SMTP envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// `MAIL FROM`; `Some("")` is the null return path of bounces.
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// The facts of a message Tocsin needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// Message-IDs this one answers: In-Reply-To first, then References
    /// newest first.
    pub refs: Vec<String>,
    /// The From address, lower-cased.
    pub from: String,
    /// To and Cc addresses, lower-cased.
    pub to: Vec<String>,
    pub subject: String,
    /// What the sender wrote, without quoted history or signature.
    pub text: String,
    /// Why this message is automatic (an auto-reply, a bounce, list mail),
    /// if it is. Such mail never opens a case nor gets a receipt.
    pub automatic: Option<String>,
    /// The values of the `Authentication-Results` headers, topmost first,
    /// in runs of adjacent ones: see [`auth::trusted_results`].
    pub auth_results: Vec<Vec<String>>,
}

impl Mail {
    /// The case number of a `[#1042]` tag in the subject.
    pub fn subject_tag(&self) -> Option<CaseNumber> {
        static TAG: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\[#(\d{1,18})\]").unwrap_or_else(|e| unreachable!("{e}")));
        TAG.captures(&self.subject).and_then(|c| c[1].parse().ok()).map(CaseNumber)
    }
}

/// Why a message cannot be filed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("not an RFC 5322 message")]
    NotAMessage,
    #[error("no From address to answer or thread by")]
    NoSender,
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Reads `raw`. The envelope helps to spot bounces (null return path).
pub fn read(raw: &[u8], envelope: &Envelope) -> Result<Mail, Unusable> {
    let message = MessageParser::default().parse(raw).ok_or(Unusable::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(Unusable::NotAMessage);
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| a.contains('@'))
        .ok_or(Unusable::NoSender)?;
    let to: Vec<String> = [message.to(), message.cc()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    let mut refs = ids(message.in_reply_to());
    let mut references = ids(message.references());
    references.reverse();
    for r in references {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    // Raw header values, by lower-case name, for the loop checks.
    let headers: Vec<(String, String)> = message
        .headers()
        .iter()
        .map(|h| {
            let value = raw.get(h.offset_start as usize..h.offset_end as usize).unwrap_or_default();
            (h.name.as_str().to_ascii_lowercase(), String::from_utf8_lossy(value).trim().to_ascii_lowercase())
        })
        .collect();
    let automatic = automatic(&headers, &from, envelope);
    let mut auth_results: Vec<Vec<String>> = Vec::new();
    let mut adjacent = false;
    for (name, value) in &headers {
        let here = name == "authentication-results";
        match auth_results.last_mut() {
            Some(run) if here && adjacent => run.push(value.clone()),
            _ if here => auth_results.push(vec![value.clone()]),
            _ => {}
        }
        adjacent = here;
    }
    let body = message.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
    let mut text = strip_reply(&body);
    if text.chars().count() > MAX_TEXT {
        text = text.chars().take(MAX_TEXT).collect();
    }
    Ok(Mail {
        message_id: message.message_id().map(str::to_owned),
        refs,
        from,
        to,
        subject: message.subject().unwrap_or("(no subject)").trim().to_owned(),
        text,
        automatic,
        auth_results,
    })
}

/// The reason a message is machine-sent (RFC 3834 and common practice), if
/// it is.
fn automatic(headers: &[(String, String)], from: &str, envelope: &Envelope) -> Option<String> {
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if let Some(v) = get("auto-submitted")
        && v != "no"
    {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = get("precedence")
        && ["bulk", "junk", "list"].contains(&v)
    {
        return Some(format!("Precedence: {v}"));
    }
    for name in ["x-autoreply", "x-autorespond", "x-auto-response-suppress", "list-id", "list-unsubscribe"] {
        if get(name).is_some() {
            return Some(format!("{name} header"));
        }
    }
    if envelope.from.as_deref() == Some("") || get("return-path") == Some("<>") {
        return Some("null return path (a bounce)".into());
    }
    let local = from.split('@').next().unwrap_or_default();
    if local.starts_with("mailer-daemon") || local == "postmaster" {
        return Some(format!("sent by {local}"));
    }
    if get("content-type").is_some_and(|c| c.starts_with("multipart/report")) {
        return Some("delivery report".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(headers: &str) -> Mail {
        let raw = format!(
            "{headers}From: Olivia <Ops@Acme.com>\r\nTo: help@support.example.com\r\nSubject: Re: [#1042] Checkout down\r\nMessage-ID: <abc@acme.com>\r\n\r\nStill down.\r\n\r\nOn Tue, Nov 24, 2026 at 10:02 AM Support <s@x> wrote:\r\n> old\r\n"
        );
        read(raw.as_bytes(), &Envelope::default()).unwrap()
    }

    #[test]
    fn a_reply_yields_sender_subject_tag_and_new_text() {
        let m = mail("In-Reply-To: <r2@support.example.com>\r\nReferences: <r1@x> <r2@support.example.com>\r\n");
        assert_eq!(m.from, "ops@acme.com");
        assert_eq!(m.message_id.as_deref(), Some("abc@acme.com"));
        assert_eq!(m.refs, ["r2@support.example.com", "r1@x"]);
        assert_eq!(m.subject_tag(), Some(CaseNumber(1042)));
        assert_eq!(m.text, "Still down.");
        assert_eq!(m.automatic, None);
    }

    #[test]
    fn authentication_results_are_kept_in_runs_of_adjacent_headers() {
        let m = mail(
            "Authentication-Results: mx.example.com; dkim=none\r\nAuthentication-Results: mx.example.com; spf=none\r\nReceived: from x by mx.example.com\r\nAuthentication-Results: mx.example.com; dkim=pass header.d=acme.com\r\n",
        );
        assert_eq!(
            m.auth_results,
            [
                vec!["mx.example.com; dkim=none".to_owned(), "mx.example.com; spf=none".to_owned()],
                vec!["mx.example.com; dkim=pass header.d=acme.com".to_owned()],
            ]
        );
    }

    #[test]
    fn machine_mail_is_recognised() {
        for h in [
            "Auto-Submitted: auto-replied\r\n",
            "Precedence: bulk\r\n",
            "X-Autoreply: yes\r\n",
            "X-Autorespond: yes\r\n",
            "X-Auto-Response-Suppress: All\r\n",
            "List-Id: <ops.acme.com>\r\n",
            "List-Unsubscribe: <mailto:x@y>\r\n",
            "Return-Path: <>\r\n",
        ] {
            assert!(mail(h).automatic.is_some(), "{h}");
        }
        assert_eq!(mail("Auto-Submitted: no\r\n").automatic, None);
        assert_eq!(mail("Precedence: first-class\r\n").automatic, None);
    }

    #[test]
    fn a_null_envelope_sender_or_a_daemon_is_a_bounce() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.acme.com>\r\nSubject: Undelivered\r\n\r\nx";
        assert!(read(raw, &Envelope::default()).unwrap().automatic.is_some());
        let raw = b"From: ops@acme.com\r\nSubject: x\r\n\r\nx";
        let bounce = Envelope { from: Some(String::new()), to: vec![] };
        assert!(read(raw, &bounce).unwrap().automatic.is_some());
    }

    #[test]
    fn garbage_and_anonymous_mail_are_unusable() {
        assert_eq!(read(b"", &Envelope::default()), Err(Unusable::NotAMessage));
        assert_eq!(read(b"Subject: hi\r\n\r\nno sender", &Envelope::default()), Err(Unusable::NoSender));
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw =
            b"From: ops@acme.com\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>The <b>checkout</b> is down.</p>";
        assert_eq!(read(raw, &Envelope::default()).unwrap().text, "The checkout is down.");
    }
}
