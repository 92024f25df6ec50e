//! Mail in: one `ingest` path behind three doors (the SMTP listener,
//! `tocsin ingest` for an MTA pipe, and `POST /hooks/email`).
//!
//! Every door first commits the raw message to the inbox and only then says
//! yes (250, exit 0, 202): a mail accepted is never lost. Filing (parse,
//! thread, open or join a case) marks the inbox row in the transaction of
//! the case change, so it happens exactly once; rows a crash left pending
//! are filed by the inbox worker when the daemon starts.

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::{Notify, watch};

use crate::case::decide::NewCase;
use crate::case::{ActionError, Actor, CaseNumber, Filing, NewPage, PageKind, Via};
use crate::clock::Clock;
use crate::mail::auth::Verification;
use crate::mail::{Envelope, InboxStatus, Mail, read};
use crate::notify::ids::{ReplyKey, constant_eq};
use crate::people::{ChannelKind, PersonId};
use crate::service::cases::{Action, CaseError, CaseService};
use crate::service::verify::Verifier;
use crate::store::{Store, StoreError};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It opened this case.
    Opened(CaseNumber),
    /// It joined this case.
    Joined(CaseNumber),
    /// Its Message-ID was received before; nothing changed.
    Duplicate,
    /// An auto-reply, bounce or list mail: it opened nothing, and joined the
    /// case it answers, if any.
    Automatic { case: Option<CaseNumber>, why: String },
    /// It could not be read; it is kept raw and flagged.
    Unusable(String),
    /// An engineer's reply carrying a command for this case.
    Command { case: CaseNumber, ok: bool },
    /// A reply token used by someone it was not given to; nothing changed.
    Refused(String),
    /// Over a new-case limit with no open case of its sender to join: kept
    /// in the inbox as held, why.
    Held(String),
}

impl Outcome {
    /// What the inbox row becomes, as stored and shown by the doors.
    pub fn status(&self) -> InboxStatus {
        match self {
            Outcome::Opened(_) | Outcome::Joined(_) => InboxStatus::Filed,
            Outcome::Duplicate => InboxStatus::Duplicate,
            Outcome::Automatic { .. } => InboxStatus::Automatic,
            Outcome::Unusable(_) => InboxStatus::Unusable,
            Outcome::Command { .. } => InboxStatus::Command,
            Outcome::Refused(_) => InboxStatus::Refused,
            Outcome::Held(_) => InboxStatus::Held,
        }
    }

    pub fn case(&self) -> Option<CaseNumber> {
        match self {
            Outcome::Opened(n) | Outcome::Joined(n) | Outcome::Command { case: n, .. } => Some(*n),
            Outcome::Automatic { case, .. } => *case,
            _ => None,
        }
    }
}

/// Settings of filing.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub reopen_within: TimeDelta,
    pub receipts_per_hour: u32,
    /// Largest message accepted, in bytes.
    pub max_size: usize,
    /// New cases per sender and per sender domain per hour.
    pub limits: crate::mail::intake::NewCaseLimits,
}

/// How engineers' replies are recognised: the key that signed their reply
/// addresses and Message-IDs, and the address's parts.
#[derive(Debug, Clone)]
pub struct ReplyAddresses {
    pub key: ReplyKey,
    /// Local part of `[email] from`.
    pub local: String,
    /// `[email] reply_domain`, lower-cased.
    pub domain: String,
    /// What counts as support's own address in a reply-all.
    pub support: SupportAddresses,
}

/// Support's own addresses: any at the inbound domains (`[email] domains`)
/// or the reply domain, and `[email] from` itself. A mail from a person
/// with one of them in To or Cc is a reply-all.
#[derive(Debug, Clone, Default)]
pub struct SupportAddresses {
    domains: Vec<String>,
    from: String,
}

impl SupportAddresses {
    pub fn new(domains: &[String], reply_domain: &str, from: &str) -> Self {
        let mut domains: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        domains.push(reply_domain.to_ascii_lowercase());
        Self { domains, from: from.to_ascii_lowercase() }
    }

    /// Whether `address` (lower-cased) is one of support's.
    pub fn contains(&self, address: &str) -> bool {
        address == self.from || address.rsplit_once('@').is_some_and(|(_, d)| self.domains.iter().any(|s| s == d))
    }
}

/// Receives and files inbound mail.
pub struct Inbox {
    pub replies: ReplyAddresses,
    pub cases: Arc<CaseService>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Signalled when a message is received.
    pub wake: Arc<Notify>,
    /// Checks each mail's From (`[email] verify`), once, before filing.
    pub verifier: Arc<Verifier>,
}

impl Inbox {
    /// Commits `raw` durably; after this returns Ok the message cannot be
    /// lost. The inbox worker files it.
    pub async fn receive(&self, raw: &[u8], envelope: &Envelope, source: &str) -> Result<i64, StoreError> {
        let id = self.commit_raw(raw, envelope, source).await?;
        self.wake.notify_one();
        Ok(id)
    }

    async fn commit_raw(&self, raw: &[u8], envelope: &Envelope, source: &str) -> Result<i64, StoreError> {
        let id = self.store.receive_mail(raw, envelope, source, self.clock.now()).await?;
        metrics::counter!("tocsin_mail_received_total", "source" => source.to_owned()).increment(1);
        Ok(id)
    }

    /// Receives and files at once: for the MTA pipe and the webhook, which
    /// answer with the outcome.
    /// (The worker is not woken: this caller files the row itself.)
    pub async fn ingest(&self, raw: &[u8], envelope: &Envelope, source: &str) -> Result<(i64, Outcome), CaseError> {
        let id = self.commit_raw(raw, envelope, source).await?;
        Ok((id, self.file(id).await?))
    }

    /// Files inbox row `id` (once: a row already filed reports what it became).
    pub async fn file(&self, id: i64) -> Result<Outcome, CaseError> {
        let Some(record) = self.store.inbox(id).await? else {
            return Ok(Outcome::Unusable(format!("no inbox row {id}")));
        };
        if record.status != InboxStatus::Pending {
            return Ok(settled(record.status, record.case, &record.note));
        }
        let (raw, envelope) = (record.raw.clone(), record.envelope.clone());
        let parsed = tokio::task::spawn_blocking(move || {
            read(&raw, &envelope).map(|mail| (mail, crate::mail::attachments::list(&raw)))
        })
        .await;
        let (mail, attachments) = match parsed {
            Ok(Ok(read)) => read,
            Ok(Err(why)) => return self.settle(id, Outcome::Unusable(why.to_string())).await,
            Err(panic) => return self.settle(id, Outcome::Unusable(format!("the parser failed: {panic}"))).await,
        };
        // The verdict on the From, computed once and handed to what
        // decides (issue 13).
        let verdict = self.verifier.check(&record.raw, &mail).await;
        let outcome = match self.engineer(&mail, &record.envelope).await? {
            Some((case, person)) => self.engineer_reply(id, &mail, case, &person, &verdict).await,
            None => match self.reply_all(&mail).await? {
                Some((case, person)) => self.recorded_reply(id, &mail, case, &person, &verdict).await,
                None => self.file_mail(id, &mail, &verdict, attachments).await,
            },
        };
        match outcome {
            Err(CaseError::Store(StoreError::AlreadyFiled)) => {
                let now = self.store.inbox(id).await?;
                Ok(now.map_or(Outcome::Duplicate, |r| settled(r.status, r.case, &r.note)))
            }
            Err(CaseError::Store(StoreError::Duplicate(_))) => self.settle(id, Outcome::Duplicate).await,
            // A message the rules cannot place must not block the inbox:
            // it is kept raw and flagged.
            Err(CaseError::Refused(e)) => self.settle(id, Outcome::Unusable(format!("cannot file: {e}"))).await,
            other => other,
        }
    }

    async fn settle(&self, id: i64, outcome: Outcome) -> Result<Outcome, CaseError> {
        let note = match &outcome {
            Outcome::Unusable(why) | Outcome::Refused(why) => why.clone(),
            Outcome::Automatic { why, .. } => why.clone(),
            _ => String::new(),
        };
        self.store.settle_mail(id, outcome.status(), &note, self.clock.now()).await?;
        metrics::counter!("tocsin_mail_filed_total", "outcome" => outcome.status().as_str()).increment(1);
        Ok(outcome)
    }

    /// The case and person a reply to a page belongs to, if it is one: by
    /// the signed reply address it was sent to, else by the signed
    /// Message-ID it answers. Never by the From header.
    async fn engineer(&self, mail: &Mail, envelope: &Envelope) -> Result<Option<(CaseNumber, PersonId)>, CaseError> {
        let r = &self.replies;
        let prefix = format!("{}+", r.local.to_ascii_lowercase());
        for address in mail.to.iter().chain(envelope.to.iter()) {
            let address = address.to_ascii_lowercase();
            let Some((local, domain)) = address.rsplit_once('@') else { continue };
            let Some((n, token)) = local.strip_prefix(&prefix).and_then(|rest| rest.split_once('.')) else { continue };
            let Ok(n) = n.parse::<i64>() else { continue };
            if domain != r.domain {
                continue;
            }
            let rules = self.cases.rules.get();
            let person = rules
                .people
                .keys()
                .find(|p| constant_eq(r.key.reply_token(CaseNumber(n), p.as_str()).as_bytes(), token.as_bytes()));
            if let Some(p) = person {
                return Ok(Some((CaseNumber(n), p.clone())));
            }
        }
        for (n, page) in self.signed_refs(mail) {
            // Mail to the customer has no person; an answer to it is theirs.
            if let Some(p) = self.store.page(page).await?.filter(|p| !p.kind.to_customer()).and_then(|p| p.person) {
                return Ok(Some((n, p)));
            }
        }
        Ok(None)
    }

    /// The case whose signed customer reply address (see
    /// [`ReplyKey::customer_address`]) this mail was sent to, if any.
    fn customer_address(&self, mail: &Mail) -> Option<CaseNumber> {
        let r = &self.replies;
        let prefix = format!("{}+", r.local.to_ascii_lowercase());
        mail.to.iter().find_map(|address| {
            let (local, domain) = address.rsplit_once('@')?;
            let (n, token) = local.strip_prefix(&prefix)?.split_once('.')?;
            let n = CaseNumber(n.parse::<i64>().ok()?);
            (domain == r.domain && constant_eq(r.key.customer_token(n).as_bytes(), token.as_bytes())).then_some(n)
        })
    }

    /// The case and outbox row of each Message-ID this mail answers that
    /// Tocsin signed (`tocsin.<case>.<page>.<sig>@reply_domain`): proof the
    /// sender saw that mail, as nobody can make one without the reply key.
    fn signed_refs(&self, mail: &Mail) -> Vec<(CaseNumber, i64)> {
        let r = &self.replies;
        let mut found = Vec::new();
        for id in &mail.refs {
            let Some((local, domain)) = id.rsplit_once('@') else { continue };
            let parts: Vec<&str> = local.split('.').collect();
            let ["tocsin", n, page, _sig] = parts[..] else { continue };
            let (Ok(n), Ok(page)) = (n.parse::<i64>(), page.parse::<i64>()) else { continue };
            if domain == r.domain
                && constant_eq(r.key.message_id(CaseNumber(n), page, domain).as_bytes(), id.as_bytes())
            {
                found.push((CaseNumber(n), page));
            }
        }
        found
    }

    /// An engineer's reply: its first line is the command; if that is not
    /// one, the whole reply is a note. Automatic replies (out of office)
    /// never count, and a reply token works only for the person it was
    /// given to. The answer goes back by email.
    async fn engineer_reply(
        &self,
        id: i64,
        mail: &Mail,
        case: CaseNumber,
        person: &PersonId,
        verdict: &Verification,
    ) -> Result<Outcome, CaseError> {
        let rules = self.cases.rules.get();
        let Some(who) = rules.people.get(person) else {
            return self.settle(id, Outcome::Refused(format!("{person} is no longer in the rules"))).await;
        };
        if let Some(why) = &mail.automatic {
            return self
                .settle(id, Outcome::Automatic { case: Some(case), why: format!("{why}; not a command") })
                .await;
        }
        if !who.email.eq_ignore_ascii_case(&mail.from) {
            let why = format!("the reply token of {person} for {case} came from {}, not from {}", mail.from, who.email);
            tracing::warn!(%why, "reply refused");
            return self.settle(id, Outcome::Refused(why)).await;
        }
        // With `[email] verify` on, a From header is not enough: anyone can
        // write one. The answer goes to the person's own address from the
        // rules, never to an address the mail named, so a forgery cannot
        // turn Tocsin into a source of backscatter.
        if let Some(failed) = verdict.refusal() {
            let why = format!("the reply of {person} for {case} could not be verified: {failed}");
            tracing::warn!(%why, "reply refused");
            let text = format!(
                "A reply about case {case} from your address was not carried out: it could not be verified \
                 ({failed}). Email commands need mail signed by your domain (DKIM); reply from your usual \
                 mail account, or text the command."
            );
            self.answer(who, case, text).await?;
            return self.settle(id, Outcome::Refused(why)).await;
        }
        let cmd = match crate::command::parse_mail(&mail.text) {
            Ok(cmd) => cmd,
            Err(_) if !mail.text.trim().is_empty() => crate::command::Command {
                case: Some(case),
                verb: crate::command::Verb::Note(mail.text.trim().to_owned()),
            },
            Err(e) => crate::command::Command { case: Some(case), verb: crate::command::Verb::Note(e.to_string()) },
        };
        // A reply token speaks for one case: a command naming another is
        // refused, so one leaked reply address cannot act on every case.
        if let Some(named) = cmd.case.filter(|n| *n != case) {
            let why = format!("the reply token of {person} for {case} named {named}");
            tracing::warn!(%why, "reply refused");
            let text = format!(
                "This reply address acts on case {case} only; nothing was done to {named}. \
                 Reply to a page of {named}, or text the command."
            );
            self.answer(who, case, text).await?;
            return self.settle(id, Outcome::Refused(why)).await;
        }
        let filing = Filing {
            inbox_id: id,
            message_id: mail.message_id.clone(),
            status: InboxStatus::Command,
            note: String::new(),
            attachments: Vec::new(),
        };
        let answer =
            crate::service::commands::execute(&self.cases, who, &cmd, Via::Email, Some(case), Some(filing)).await?;
        let about = answer.case.unwrap_or(case);
        if let Some(text) = answer.text.clone() {
            self.answer(who, about, text).await?;
        }
        let outcome = Outcome::Command { case: about, ok: answer.ok };
        // Filed with the change it made; a command that changed nothing
        // (LIST, an error) is settled here.
        if self.store.inbox(id).await?.is_some_and(|r| r.status == InboxStatus::Pending) {
            self.store
                .settle_mail(id, outcome.status(), answer.text.as_deref().unwrap_or_default(), self.clock.now())
                .await?;
        }
        Ok(outcome)
    }

    /// A reply-all from an engineer's own mail program: From is a person's
    /// address, the mail answers a case's thread (by `In-Reply-To` /
    /// `References`, else by its `[#n]` tag), and a support address is in
    /// To or Cc. The case and the person, if so. Automatic mail (their out
    /// of office) is never a reply.
    async fn reply_all(&self, mail: &Mail) -> Result<Option<(CaseNumber, PersonId)>, CaseError> {
        if mail.automatic.is_some() || !mail.to.iter().any(|a| self.replies.support.contains(a)) {
            return Ok(None);
        }
        let rules = self.cases.rules.get();
        let Some(person) = rules.people.values().find(|p| p.email.eq_ignore_ascii_case(&mail.from)) else {
            return Ok(None);
        };
        let case = match self.store.case_by_message_id(&mail.refs).await? {
            Some(n) => Some(n),
            None => match mail.subject_tag() {
                Some(n) => self.store.case(n).await?.map(|c| c.number),
                None => None,
            },
        };
        Ok(case.map(|n| (n, person.id.clone())))
    }

    /// Records a reply-all as `person`'s reply on `case`: it counts for the
    /// clocks, and nothing is sent (the customer already has it). Its
    /// Message-ID threads the customer's answer to it into the case. With
    /// `[email] verify` on, an unproven From records nothing: anyone can
    /// write a person's address.
    async fn recorded_reply(
        &self,
        id: i64,
        mail: &Mail,
        case: CaseNumber,
        person: &PersonId,
        verdict: &Verification,
    ) -> Result<Outcome, CaseError> {
        if let Some(failed) = verdict.refusal() {
            let why = format!("a reply-all on {case} from {person}'s address could not be verified: {failed}");
            tracing::warn!(%why, "reply-all not recorded");
            return self.settle(id, Outcome::Refused(why)).await;
        }
        let text = if mail.text.trim().is_empty() { "(no text)".to_owned() } else { mail.text.trim().to_owned() };
        let filing = Filing {
            inbox_id: id,
            message_id: mail.message_id.clone(),
            status: InboxStatus::Command,
            note: "a reply-all from the engineer's own mail, recorded as their reply".into(),
            attachments: Vec::new(),
        };
        let action = Action::RecordReply { by: person.clone(), text };
        self.cases.act_filing(case, &action, &Actor::Person(person.clone()), Via::Email, Some(filing)).await?;
        metrics::counter!("tocsin_mail_filed_total", "outcome" => "reply_all").increment(1);
        Ok(Outcome::Command { case, ok: true })
    }

    /// Queues `text` by email to `who`, about `case`: the answer to their
    /// reply.
    async fn answer(&self, who: &crate::people::Person, case: CaseNumber, text: String) -> Result<(), StoreError> {
        let page = NewPage {
            person: Some(who.id.clone()),
            address: who.email.clone(),
            channel: ChannelKind::Email,
            kind: PageKind::Confirmation,
            position: None,
            detail: text,
            author: None,
        };
        self.store.queue_pages(Some(case), &[page], self.clock.now()).await?;
        self.cases.wake.dispatcher.notify_one();
        Ok(())
    }

    /// The case a message answers: by Message-ID first, else by a subject
    /// tag if the sender is the case's requester or of its customer. Mail
    /// whose From failed verification threads only by a Message-ID Tocsin
    /// signed (it answers mail Tocsin sent): never by a subject tag, nor by
    /// a customer's own Message-ID, which others may have seen.
    async fn thread(&self, mail: &Mail, verdict: &Verification) -> Result<Option<CaseNumber>, CaseError> {
        // Sent to the signed address of a reply (`Reply-To`): as good as
        // answering a Message-ID Tocsin signed.
        if let Some(n) = self.customer_address(mail) {
            return Ok(Some(n));
        }
        if verdict.refusal().is_some() {
            return Ok(self.signed_refs(mail).first().map(|(n, _)| *n));
        }
        if let Some(n) = self.store.case_by_message_id(&mail.refs).await? {
            return Ok(Some(n));
        }
        let Some(n) = mail.subject_tag() else { return Ok(None) };
        let Some(case) = self.store.case(n).await? else { return Ok(None) };
        let rules = self.cases.rules.get();
        let customer = rules.customer_for(&mail.from).map(|c| c.name.as_str());
        let theirs = case.requester == mail.from || (customer.is_some() && customer == case.customer.as_deref());
        Ok(theirs.then_some(n))
    }

    async fn file_mail(
        &self,
        id: i64,
        mail: &Mail,
        verdict: &Verification,
        attachments: Vec<crate::mail::attachments::Attachment>,
    ) -> Result<Outcome, CaseError> {
        if let Some(message_id) = &mail.message_id
            && self.store.received_before(message_id).await?
        {
            return self.settle(id, Outcome::Duplicate).await;
        }
        let filing = Filing {
            inbox_id: id,
            message_id: mail.message_id.clone(),
            status: if mail.automatic.is_some() { InboxStatus::Automatic } else { InboxStatus::Filed },
            note: mail.automatic.clone().unwrap_or_default(),
            // A customer's attachments are listed on the case; an
            // automatic message's are not.
            attachments: if mail.automatic.is_some() { Vec::new() } else { attachments },
        };
        let actor = Actor::Customer(mail.from.clone());
        if let Some(n) = self.thread(mail, verdict).await? {
            let action = Action::Mail {
                from: mail.from.clone(),
                text: mail.text.clone(),
                automatic: mail.automatic.clone(),
                reopen_within: self.settings.reopen_within,
            };
            match self.cases.act_filing(n, &action, &actor, Via::Email, Some(filing.clone())).await {
                Ok(_) => {
                    let outcome = match &mail.automatic {
                        Some(why) => Outcome::Automatic { case: Some(n), why: why.clone() },
                        None => Outcome::Joined(n),
                    };
                    metrics::counter!("tocsin_mail_filed_total", "outcome" => outcome.status().as_str()).increment(1);
                    return Ok(outcome);
                }
                Err(CaseError::Refused(ActionError::TooOldToReopen(old))) => {
                    let text =
                        format!("Follow-up to {old}, which was resolved too long ago to reopen.\n\n{}", mail.text);
                    return self.open(mail, text, filing, verdict).await;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(why) = &mail.automatic {
            return self.settle(id, Outcome::Automatic { case: None, why: why.clone() }).await;
        }
        self.open(mail, mail.text.clone(), filing, verdict).await
    }

    async fn open(
        &self,
        mail: &Mail,
        body: String,
        filing: Filing,
        verdict: &Verification,
    ) -> Result<Outcome, CaseError> {
        let unverified = match (verdict.refusal(), mail.subject_tag()) {
            (None, _) => None,
            (Some(why), Some(tag)) => Some(format!("{why}; so it did not join {tag} by its subject tag")),
            (Some(why), None) => Some(why.to_owned()),
        };
        if let Some(limited) = self.over_new_case_limit(mail, &filing, unverified.is_some()).await? {
            return Ok(limited);
        }
        let since = self.clock.now() - TimeDelta::hours(1);
        let receipt = self.store.receipts_since(&mail.from, since).await? < i64::from(self.settings.receipts_per_hour);
        let subject: String = mail.subject.chars().take(crate::limits::MAX_SUBJECT).collect();
        let new = NewCase {
            subject: subject.replace(['\r', '\n'], " "),
            body,
            requester: mail.from.clone(),
            priority: None,
            actor: Actor::Customer(mail.from.clone()),
            via: Via::Email,
            receipt,
            unverified,
        };
        let case = self.cases.open_filing(new, Some(filing)).await?;
        metrics::counter!("tocsin_mail_filed_total", "outcome" => "filed").increment(1);
        Ok(Outcome::Opened(case.number))
    }

    /// Files pending mail until `shutdown`: at start (what a crash left), and
    /// whenever a door receives a message.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.store.pending_mail(64).await {
                Ok(ids) if !ids.is_empty() => {
                    for id in ids {
                        if let Err(e) = self.file(id).await {
                            tracing::error!(inbox = id, error = %e, "cannot file mail; will retry");
                            tokio::select! {
                                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                                _ = shutdown.changed() => return,
                            }
                        }
                    }
                    // Draining: what is left stays pending, filed at the
                    // next start.
                    if *shutdown.borrow() {
                        return;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot read the inbox"),
            }
            // Also look now and then: `tocsin ingest` in another process
            // may have left a message it could not file.
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn settled(status: InboxStatus, case: Option<CaseNumber>, note: &str) -> Outcome {
    match (status, case) {
        (InboxStatus::Filed, Some(n)) => Outcome::Joined(n),
        (InboxStatus::Automatic, case) => Outcome::Automatic { case, why: note.to_owned() },
        (InboxStatus::Unusable, _) => Outcome::Unusable(note.to_owned()),
        (InboxStatus::Refused, _) => Outcome::Refused(note.to_owned()),
        (InboxStatus::Held, _) => Outcome::Held(note.to_owned()),
        (InboxStatus::Command, Some(n)) => Outcome::Command { case: n, ok: true },
        _ => Outcome::Duplicate,
    }
}
