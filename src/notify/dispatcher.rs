//! The dispatcher: delivers outbox rows through their channel.
//!
//! It claims due pages with a lease (marking them `sending`) before any
//! provider is called, sends a claimed batch concurrently, and records every
//! outcome of the batch in one transaction:
//! - sent (with the provider's id, and an email's Message-ID for threading);
//! - a temporary failure: queued again after an exponential back-off with
//!   jitter, at most [`MAX_ATTEMPTS`] times;
//! - a permanent failure: failed, and the same person is paged at once on
//!   their next channel;
//! - superseded (the case was acknowledged or escalated past the page's
//!   step before it went out): cancelled, never delivered late.
//!
//! A dispatcher that dies mid-send leaves its pages `sending`; when the
//! lease runs out another claim takes them as "in doubt", and a channel
//! that can look (Twilio's message log) is asked whether the first send went
//! out before the page is sent again.

use std::sync::Arc;

use chrono::TimeDelta;
use rand::Rng;
use tokio::sync::{Notify, watch};

use super::ids::ReplyKey;
use super::templates::Live;
use super::{Channel, Message, Rendered, SendError, context};
use crate::case::{Case, NewPage, PageKind, Status};
use crate::clock::Clock;
use crate::people::ChannelKind;
use crate::routing::Urgency;
use crate::rules::{LiveRules, Rules};
use crate::store::{Delivery, PageRecord, Store, StoreError};

/// How many times a page is tried before it fails for good.
pub const MAX_ATTEMPTS: i64 = 5;

/// The channels pages can go out on.
#[derive(Clone)]
pub struct Channels {
    pub sms: Arc<dyn Channel>,
    pub email: Arc<dyn Channel>,
}

impl Channels {
    fn get(&self, kind: ChannelKind) -> &Arc<dyn Channel> {
        match kind {
            ChannelKind::Sms => &self.sms,
            ChannelKind::Email => &self.email,
        }
    }
}

/// Delivers queued pages.
pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub rules: LiveRules,
    pub templates: Live,
    pub channels: Channels,
    pub clock: Arc<dyn Clock>,
    pub public_url: String,
    /// Names this worker in leases.
    pub owner: String,
    pub lease: TimeDelta,
    /// Signs Message-IDs and reply addresses.
    pub key: ReplyKey,
    /// Domain of the Message-IDs and reply addresses.
    pub id_domain: String,
    /// Local part of `[email] from`, the base of reply addresses.
    pub reply_local: String,
    /// At most one SMS per person in this time (zero: no limit); pages
    /// due meanwhile wait and go out together as one message.
    pub sms_interval: TimeDelta,
    /// Signalled when new pages are queued.
    pub wake: Arc<Notify>,
}

/// Why a page should not go out any more, if so.
pub fn superseded(case: &Case, page: &PageRecord) -> Option<String> {
    match page.kind {
        PageKind::Page => {
            let paging =
                case.status == Status::Open && case.escalation.running && Some(case.escalation.at) == page.position;
            (!paging).then(|| format!("superseded: the case is {} and at {}", case.status.as_str(), case.escalation.at))
        }
        // Reminders, warnings and news of a case go to its assignee: once
        // it is given to someone else, those still queued for the previous
        // one do not go out.
        _ if matches!(page.kind, PageKind::Reminder | PageKind::Warning | PageKind::Reply | PageKind::Assigned)
            && page.person.is_some()
            && case.assignee.is_some()
            && page.person != case.assignee =>
        {
            Some("superseded: the case was assigned to someone else".to_owned())
        }
        PageKind::Reminder => {
            (case.status != Status::Acknowledged).then(|| format!("superseded: the case is {}", case.status.as_str()))
        }
        PageKind::Warning | PageKind::Reply | PageKind::Assigned => {
            case.status.is_done().then(|| format!("superseded: the case is {}", case.status.as_str()))
        }
        // A reply a person wrote goes out whatever became of the case since.
        PageKind::Breach
        | PageKind::Receipt
        | PageKind::Confirmation
        | PageKind::Notice
        | PageKind::Digest
        | PageKind::CustomerReply
        | PageKind::CustomerAck
        | PageKind::CustomerResolved => None,
    }
}

/// The same person's next channel after `page`'s, for a page that failed;
/// never SMS for someone who replied STOP, nor for a `low` case.
pub async fn fallback(rules: &Rules, store: &dyn Store, page: &PageRecord) -> Option<NewPage> {
    let person = rules.people.get(page.person.as_ref()?)?;
    // Read only when a page fails. Should the read fail, the carrier still
    // blocks SMS to a number that sent STOP, so falling back blind is safe.
    let sms_off = match store.sms_opt_outs().await {
        Ok(off) => off.contains(&person.id),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read SMS opt-outs for a fall-back");
            false
        }
    };
    let (channel, address) = person.reach(sms_off, Some(page.channel))?;
    // A `low` case is paged by email alone: a failed email never falls
    // back to SMS (the case is read only when a page fails).
    if channel == ChannelKind::Sms
        && let Some(n) = page.case
        && let Ok(Some(case)) = store.case(n).await
        && case.urgency == Urgency::Low
    {
        return None;
    }
    Some(NewPage {
        person: Some(person.id.clone()),
        address: address.to_owned(),
        channel,
        kind: page.kind,
        position: page.position,
        detail: page.detail.clone(),
        author: None,
    })
}

/// The wait before attempt `attempts + 1`: 5s, 10s, 20s… up to five minutes,
/// with ±20% jitter so retries of many pages do not march in step.
pub fn backoff(attempts: i64) -> TimeDelta {
    let base = 5_000i64.saturating_mul(1 << attempts.clamp(1, 10).saturating_sub(1)).min(300_000);
    let jitter = rand::rng().random_range(-base / 5..=base / 5);
    TimeDelta::milliseconds(base + jitter)
}

/// The text a page falls back to when its template fails at run time, so a
/// typo in a template never loses a page.
fn plain(case: &Case, page: &PageRecord) -> Rendered {
    let text = format!("Tocsin {} for case {} ({}): {}", page.kind.as_str(), case.number, case.priority, case.subject);
    let text: String = text.chars().take(160).collect();
    Rendered { subject: text.clone(), text, html: None }
}

impl Dispatcher {
    /// Delivers everything due now; returns how many pages it handled.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.run_while(|| true).await
    }

    /// Delivers batch by batch while `go` says so: a draining daemon
    /// finishes the batch it holds and claims no more.
    async fn run_while(self: &Arc<Self>, go: impl Fn() -> bool) -> Result<usize, StoreError> {
        let mut handled = 0;
        while go() {
            let pages = self.store.claim_pages(self.clock.now(), &self.owner, self.lease, 64).await?;
            if pages.is_empty() {
                return Ok(handled);
            }
            // SMS to one person are rate-limited and bundled, so they go as
            // one group; everything else goes one by one.
            let mut groups: std::collections::BTreeMap<String, Vec<PageRecord>> = Default::default();
            let mut sends = tokio::task::JoinSet::new();
            for page in pages {
                match (&page.person, page.channel, page.case) {
                    (Some(person), ChannelKind::Sms, Some(_)) if !self.sms_interval.is_zero() => {
                        groups.entry(person.to_string()).or_default().push(page);
                    }
                    _ => {
                        let this = self.clone();
                        sends.spawn(async move {
                            let outcome = this.deliver(&page).await;
                            vec![(page, outcome)]
                        });
                    }
                }
            }
            for (_, group) in groups {
                let this = self.clone();
                sends.spawn(async move { this.deliver_group(group).await });
            }
            let mut outcomes = Vec::new();
            while let Some(joined) = sends.join_next().await {
                let Ok(results) = joined else { continue };
                for (page, outcome) in results {
                    let outcome = outcome?;
                    let status = match &outcome {
                        Delivery::Sent { .. } => "sent",
                        Delivery::Retry { error, .. } => {
                            tracing::info!(page = page.id, case = ?page.case, attempt = page.attempts, %error, "page will be retried");
                            "retry"
                        }
                        Delivery::Failed { error, .. } => {
                            tracing::warn!(page = page.id, case = ?page.case, channel = page.channel.as_str(), %error, "page failed");
                            "failed"
                        }
                        Delivery::Cancelled { .. } => "cancelled",
                        Delivery::Deferred { .. } => "deferred",
                    };
                    metrics::counter!("tocsin_pages_total", "channel" => page.channel.as_str(), "status" => status)
                        .increment(1);
                    outcomes.push((page.id, outcome));
                }
            }
            handled += outcomes.len();
            self.store.finish_pages(&self.owner, &outcomes, self.clock.now()).await?;
        }
        Ok(handled)
    }

    /// SMS pages to one person: held back while the person was reached
    /// less than `[sms] min_interval` ago, then sent as one message.
    async fn deliver_group(&self, group: Vec<PageRecord>) -> Vec<(PageRecord, Result<Delivery, StoreError>)> {
        let mut out = Vec::new();
        let mut live = Vec::new();
        for page in group {
            // Only pages of a case are grouped (see run_once).
            let Some(number) = page.case else { continue };
            match self.store.case(number).await {
                Err(e) => out.push((page, Err(e))),
                Ok(None) => {
                    out.push((page, Ok(Delivery::Failed { error: format!("case {number} is gone"), fallback: None })))
                }
                Ok(Some(case)) => {
                    // An interrupted send of this page alone is looked up
                    // here, before bundling: found, it is on record as sent
                    // and stays out of the bundle.
                    let earlier = self.looked_up(&page, &self.message(&case, &page), page.in_doubt).await;
                    let outcome = match (earlier, superseded(&case, &page)) {
                        (Some(sent @ Delivery::Sent { .. }), _) => sent,
                        (_, Some(reason)) => Delivery::Cancelled { reason },
                        (Some(retry), None) => retry,
                        (None, None) => {
                            live.push((page, case));
                            continue;
                        }
                    };
                    out.push((page, Ok(outcome)));
                }
            }
        }
        let Some((first, _)) = live.first() else { return out };
        let person = first.person.clone();
        let last = match &person {
            Some(p) => self.store.last_sent(p, ChannelKind::Sms).await,
            None => Ok(None),
        };
        let next_allowed = match last {
            Ok(last) => last.map(|l| l + self.sms_interval),
            // Cannot tell when the person was last reached: try again soon,
            // as for any temporary failure (not counted as an attempt).
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the SMS rate limit; holding the pages briefly");
                let at = self.clock.now() + backoff(1);
                out.extend(live.into_iter().map(|(p, _)| (p, Ok(Delivery::Deferred { at }))));
                return out;
            }
        };
        if let Some(at) = next_allowed.filter(|at| *at > self.clock.now()) {
            out.extend(live.into_iter().map(|(p, _)| (p, Ok(Delivery::Deferred { at }))));
            return out;
        }
        if live.len() == 1 {
            let (page, case) = live.remove(0);
            // Looked up above already.
            let outcome = self.transmit(&page, &self.message(&case, &page), false).await;
            out.push((page, Ok(outcome)));
            return out;
        }
        let outcome = self.send_bundle(&live).await;
        for (page, _) in live {
            let own = match &outcome {
                Delivery::Failed { error, .. } => {
                    Delivery::Failed { error: error.clone(), fallback: self.fallback(&page).await }
                }
                other => other.clone(),
            };
            out.push((page, Ok(own)));
        }
        out
    }

    /// One SMS for several pages to one person: "3 cases: #1042 …".
    async fn send_bundle(&self, live: &[(PageRecord, Case)]) -> Delivery {
        let items: Vec<serde_json::Value> = live
            .iter()
            .map(|(page, case)| {
                let ctx = context(case, page, None, &self.public_url);
                serde_json::json!({"case": ctx.case, "page": ctx.page})
            })
            .collect();
        let ctx = serde_json::json!({"count": live.len(), "pages": items, "public_url": self.public_url});
        let text = self.templates.get().render_bundle(&ctx).unwrap_or_else(|e| {
            tracing::error!(error = %e, "bundle template failed; sending the built-in text");
            let tags: Vec<String> = live.iter().map(|(_, c)| c.number.to_string()).collect();
            format!("{} cases: {}", live.len(), tags.join(", "))
        });
        let (first, case) = &live[0];
        let msg = Message {
            page_id: first.id,
            case: Some(case.number),
            kind: first.kind,
            channel: ChannelKind::Sms,
            to: first.address.clone(),
            body: Rendered { subject: String::new(), text: super::sms::fit(&text), html: None },
            message_id: None,
            reply_to: None,
            bundled: live[1..].iter().map(|(p, _)| p.id).collect(),
            answers: Vec::new(),
        };
        self.transmit(first, &msg, live.iter().any(|(p, _)| p.in_doubt)).await
    }

    async fn fallback(&self, page: &PageRecord) -> Option<NewPage> {
        fallback(&self.rules.get(), self.store.as_ref(), page).await
    }

    fn message(&self, case: &Case, page: &PageRecord) -> Message {
        let rules = self.rules.get();
        let person = page.person.as_ref().and_then(|p| rules.people.get(p));
        let author = page.author.as_ref().and_then(|p| rules.people.get(p));
        let ctx = super::context_by(case, page, person, author, &self.public_url);
        let body = self.templates.get().render(page.kind, page.channel, &ctx).unwrap_or_else(|e| {
            tracing::error!(page = page.id, error = %e, "template failed; sending the built-in text");
            plain(case, page)
        });
        let email = page.channel == ChannelKind::Email;
        let body = if email { body } else { Rendered { text: super::sms::fit(&body.text), ..body } };
        Message {
            page_id: page.id,
            case: Some(case.number),
            kind: page.kind,
            channel: page.channel,
            to: page.address.clone(),
            body,
            message_id: email.then(|| self.key.message_id(case.number, page.id, &self.id_domain)),
            reply_to: match (&page.person, email) {
                (Some(p), true) => {
                    Some(self.key.reply_address(&self.reply_local, case.number, p.as_str(), &self.id_domain))
                }
                // The customer's answer threads back into the case.
                (None, true) if page.kind.in_customer_thread() => {
                    Some(self.key.customer_address(&self.reply_local, case.number, &self.id_domain))
                }
                _ => None,
            },
            bundled: Vec::new(),
            answers: Vec::new(),
        }
    }

    async fn deliver(&self, page: &PageRecord) -> Result<Delivery, StoreError> {
        let Some(number) = page.case else { return Ok(self.send_notice(page).await) };
        let Some(case) = self.store.case(number).await? else {
            return Ok(Delivery::Failed { error: format!("case {number} is gone"), fallback: None });
        };
        if let Some(reason) = superseded(&case, page) {
            // Not wanted any more; but if an interrupted send of it went
            // out, the record says what the person received.
            return Ok(match self.looked_up(page, &self.message(&case, page), page.in_doubt).await {
                Some(sent @ Delivery::Sent { .. }) => sent,
                _ => Delivery::Cancelled { reason },
            });
        }
        Ok(self.send_one(page, &case).await)
    }

    /// For `msg` whose earlier send was interrupted (`in_doubt`): `Sent` if
    /// that send went out after all, as the channel can tell; `Retry` when
    /// the channel cannot tell now (rather later than twice); `None` when it
    /// did not go out, or nothing is in doubt.
    async fn looked_up(&self, page: &PageRecord, msg: &Message, in_doubt: bool) -> Option<Delivery> {
        if !in_doubt {
            return None;
        }
        let since = page.prev_claimed_at.unwrap_or(page.created_at);
        match self.channels.get(page.channel).find_sent(msg, since).await {
            Ok(Some(provider_id)) => {
                tracing::info!(page = page.id, "an interrupted send had gone out; not sending again");
                Some(Delivery::Sent { provider_id: Some(provider_id), message_id: msg.message_id.clone() })
            }
            Ok(None) => None,
            Err(e) => Some(Delivery::Retry {
                at: self.clock.now() + backoff(page.attempts),
                error: format!("checking an interrupted send: {e}"),
            }),
        }
    }

    /// A notice belongs to no case: it renders its text alone.
    async fn send_notice(&self, page: &PageRecord) -> Delivery {
        let rules = self.rules.get();
        let person = page.person.as_ref().and_then(|p| rules.people.get(p));
        let ctx = super::notice_context(page, person, &self.public_url);
        let body = self.templates.get().render(page.kind, page.channel, &ctx).unwrap_or_else(|e| {
            tracing::error!(page = page.id, error = %e, "notice template failed; sending the built-in text");
            let text: String = format!("Tocsin: {}", page.detail).chars().take(160).collect();
            Rendered { subject: "Tocsin notice".into(), text, html: None }
        });
        let body = if page.channel == ChannelKind::Sms {
            Rendered { text: super::sms::fit(&body.text), ..body }
        } else {
            body
        };
        let msg = Message {
            page_id: page.id,
            case: None,
            kind: page.kind,
            channel: page.channel,
            to: page.address.clone(),
            body,
            message_id: None,
            reply_to: None,
            bundled: Vec::new(),
            answers: Vec::new(),
        };
        self.transmit(page, &msg, page.in_doubt).await
    }

    async fn send_one(&self, page: &PageRecord, case: &Case) -> Delivery {
        let mut msg = self.message(case, page);
        if page.kind.in_customer_thread() {
            // The customer's own messages, read when it goes out, so it
            // answers the latest one.
            match self.store.customer_messages(case.number).await {
                Ok(ids) => msg.answers = ids,
                Err(e) => {
                    return Delivery::Retry {
                        at: self.clock.now() + backoff(page.attempts),
                        error: format!("cannot read the customer's thread: {e}"),
                    };
                }
            }
        }
        self.transmit(page, &msg, page.in_doubt).await
    }

    /// Hands `msg` to its channel; for an interrupted earlier attempt, first
    /// asks the channel whether that one went out.
    async fn transmit(&self, page: &PageRecord, msg: &Message, in_doubt: bool) -> Delivery {
        if let Some(earlier) = self.looked_up(page, msg, in_doubt).await {
            return earlier;
        }
        let now = self.clock.now();
        match self.channels.get(page.channel).send(msg).await {
            Ok(provider_id) => Delivery::Sent { provider_id, message_id: msg.message_id.clone() },
            Err(SendError::Temporary(error)) if page.attempts < MAX_ATTEMPTS => {
                Delivery::Retry { at: now + backoff(page.attempts), error }
            }
            Err(e) => Delivery::Failed { error: e.to_string(), fallback: self.fallback(page).await },
        }
    }

    /// Runs until `shutdown` turns true: delivers, then waits for new pages
    /// or for retries and stuck leases to come due. On shutdown it finishes
    /// the batch in hand.
    pub async fn run(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stop = shutdown.clone();
            if let Err(e) = self.run_while(|| !*stop.borrow()).await {
                tracing::error!(error = %e, "dispatcher cannot reach the store; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            // Look again soon even without a signal: `tocsin ingest` in
            // another process queues pages too, and retries come due.
            let recheck = self.clock.now() + self.lease.min(TimeDelta::seconds(1));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.clock.sleep_until(recheck) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for (attempts, base) in [(1, 5_000), (2, 10_000), (3, 20_000), (9, 300_000), (40, 300_000)] {
            let wait = backoff(attempts).num_milliseconds();
            assert!((base * 4 / 5..=base * 6 / 5).contains(&wait), "attempt {attempts}: {wait}ms");
        }
    }
}
