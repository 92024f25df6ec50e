//! Engineers' phones: an SMS from a known number is a command (or STOP and
//! START, which switch SMS pages off and on and tell the managers), answered
//! within an error-reply budget; a provider's delivery report moves the
//! page and falls back to the person's next channel when it did not arrive.
//!
//! Knows nothing of Twilio's wire format: the SMS webhook adapter checks the
//! signature, reads the form and writes TwiML around these calls.

use std::sync::Arc;

use crate::case::{NewPage, PageKind, Via};
use crate::command::{self, Command, Verb};
use crate::notify::dispatcher::fallback;
use crate::people::{ChannelKind, Person};
use crate::service::cases::{CaseError, CaseService};
use crate::service::commands::{self, Answer};
use crate::store::{PageStatus, StoreError};

/// Most error replies one phone gets in a row before Tocsin goes silent.
pub const ERROR_REPLIES: i64 = 3;

/// How long a Twilio webhook's key is remembered, so that a replay of it
/// does nothing. Twilio's signature carries no timestamp, so a captured
/// request stays validly signed until the auth token is rotated; keys older
/// than this are pruned (each new claim deletes them), and a replay older
/// than this would act again. Ninety days of SIDs is a few thousand short
/// rows.
pub const REPLAYS_REMEMBERED: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// SMS in, and what became of SMS out.
pub struct Phone {
    pub cases: Arc<CaseService>,
}

impl Phone {
    /// An SMS with `body` from number `from`. Answers the text to send back
    /// on the same channel, or `None` for silence: an unknown number,
    /// STOP/START (the carrier answers those), or a phone past its error
    /// budget until its next good command or page.
    pub async fn message(&self, from: &str, body: &str) -> Result<Option<String>, CaseError> {
        let rules = self.cases.rules.get();
        let Some(person) = rules.people.values().find(|p| p.phone.as_ref().is_some_and(|ph| ph.as_str() == from))
        else {
            tracing::info!(from, "SMS from a number no person has; ignored");
            return Ok(None);
        };
        let parsed = command::parse(body);
        if let Ok(Command { verb: verb @ (Verb::Stop | Verb::Start), .. }) = &parsed {
            let out = *verb == Verb::Stop;
            if self.cases.store.set_sms_opt_out(&person.id, out, self.cases.clock.now()).await? {
                self.tell_managers(person, out).await?;
            }
            return Ok(None);
        }
        let answer = match parsed {
            Ok(cmd) => commands::execute(&self.cases, person, &cmd, Via::Sms, None, None).await?,
            Err(e) => Answer { text: Some(e.to_string()), ok: false, case: None },
        };
        let errors = self.cases.store.phone_errors(&person.id, answer.ok, self.cases.clock.now()).await?;
        if errors > ERROR_REPLIES {
            tracing::info!(person = %person.id, errors, "error replies suppressed");
            return Ok(None);
        }
        Ok(answer.text.map(|t| crate::notify::sms::fit(&t)))
    }

    /// The provider reports that SMS `provider_id` ended `status`
    /// (delivered, undelivered or failed), with the provider's `error`.
    /// Every page the SMS carried moves; a page that did not arrive falls
    /// back to its person's next channel.
    pub async fn delivery(&self, provider_id: &str, status: PageStatus, error: Option<&str>) -> Result<(), StoreError> {
        let store = &self.cases.store;
        let pages = store.pages_by_provider_id(provider_id).await?;
        if pages.is_empty() {
            tracing::info!(sid = provider_id, "status for an SMS Tocsin does not know");
        }
        let mut refallen = false;
        // One SMS may carry several bundled pages: the report is each one's.
        for page in pages {
            let fallback = if status == PageStatus::Delivered {
                None
            } else {
                fallback(&self.cases.rules.get(), store.as_ref(), &page).await
            };
            let moved =
                store.report_delivery(page.id, status, error, fallback.as_ref(), self.cases.clock.now()).await?;
            refallen |= moved && fallback.is_some();
        }
        if refallen {
            self.cases.wake.dispatcher.notify_one();
        }
        Ok(())
    }

    /// [`Phone::message`] once per Twilio `sid`: a replay of the same
    /// inbound SMS (by an attacker who captured a signed request, or a
    /// retry) answers `None` (empty TwiML, still 200 so Twilio is content)
    /// and changes nothing.
    ///
    /// The key is claimed first, in its own transaction, rather than in
    /// the transaction of the action: one SMS may run any command (several
    /// case changes, STOP's notices to managers, the error-reply count)
    /// and its answer goes back in the HTTP response, not the outbox, so
    /// there is no single transaction to put it in. The claim is one
    /// `INSERT … ON CONFLICT DO NOTHING` on a primary key, so of two
    /// instances receiving the same request at once exactly one acts. If
    /// the action then fails, the key is handed back and a retry acts; only
    /// a crash between claim and action loses the command (at most once,
    /// never twice), and the engineer, who got no answer, sends it again.
    pub async fn message_once(&self, sid: &str, from: &str, body: &str) -> Result<Option<String>, CaseError> {
        if !self.claim(sid, "sms").await? {
            tracing::warn!(sid, from, "replayed SMS webhook ignored: this MessageSid was acted on before");
            metrics::counter!("tocsin_twilio_replays_total", "hook" => "sms").increment(1);
            return Ok(None);
        }
        let answer = self.message(from, body).await;
        if answer.is_err() {
            self.release(sid, "sms").await;
        }
        answer
    }

    /// [`Phone::delivery`] once per (`provider_id`, `status`), the way
    /// [`Phone::message_once`] does it: a replayed `failed` neither moves a
    /// page nor falls back to the next channel a second time.
    pub async fn delivery_once(
        &self,
        provider_id: &str,
        status: PageStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        if !self.claim(provider_id, status.as_str()).await? {
            tracing::warn!(sid = provider_id, status = status.as_str(), "replayed status callback ignored");
            metrics::counter!("tocsin_twilio_replays_total", "hook" => "status").increment(1);
            return Ok(());
        }
        let done = self.delivery(provider_id, status, error).await;
        if done.is_err() {
            self.release(provider_id, status.as_str()).await;
        }
        done
    }

    async fn claim(&self, sid: &str, event: &str) -> Result<bool, StoreError> {
        let now = self.cases.clock.now();
        self.cases.store.claim_twilio(sid, event, now, now - REPLAYS_REMEMBERED).await
    }

    async fn release(&self, sid: &str, event: &str) {
        if let Err(e) = self.cases.store.release_twilio(sid, event).await {
            tracing::error!(sid, event, error = %e, "cannot hand back a Twilio webhook key; a retry of it will be ignored");
        }
    }

    /// Tells every manager at once that `person` opted out of SMS (`out`)
    /// or back in, and what that means for the schedules they are on.
    async fn tell_managers(&self, person: &Person, out: bool) -> Result<(), StoreError> {
        let rules = self.cases.rules.get();
        let schedules: Vec<&str> = rules
            .schedules
            .values()
            .filter(|s| s.layers.iter().any(|l| l.members.contains(&person.id)))
            .map(|s| s.name.as_str())
            .collect();
        let on =
            if schedules.is_empty() { "no schedule".to_owned() } else { format!("schedules {}", schedules.join(", ")) };
        let others: Vec<&str> = person
            .channels
            .iter()
            .filter(|c| **c != ChannelKind::Sms)
            .filter(|c| person.address(**c).is_some())
            .map(|c| c.as_str())
            .collect();
        let detail = if !out {
            format!("{} ({}) replied START: SMS pages to them resume.", person.name, person.id)
        } else if others.is_empty() {
            format!(
                "{} ({}) replied STOP and can no longer be paged at all: {on} have a hole while they are on call.",
                person.name, person.id
            )
        } else {
            format!(
                "{} ({}) replied STOP: no more SMS; pages reach them by {} only. On {on}.",
                person.name,
                person.id,
                others.join(", ")
            )
        };
        tracing::warn!(person = %person.id, out, "{detail}");
        let sms_off = self.cases.store.sms_opt_outs().await?;
        let notices: Vec<NewPage> = rules
            .managers()
            .filter_map(|m| {
                let (channel, address) = m.reach(sms_off.contains(&m.id), None)?;
                Some(NewPage {
                    person: Some(m.id.clone()),
                    address: address.to_owned(),
                    channel,
                    kind: PageKind::Notice,
                    position: None,
                    detail: detail.clone(),
                    author: None,
                })
            })
            .collect();
        self.cases.store.queue_pages(None, &notices, self.cases.clock.now()).await?;
        self.cases.wake.dispatcher.notify_one();
        Ok(())
    }
}
