//! The dispatcher: delivers outbox rows through their channel.
//!
//! It claims queued pages with a lease (marking them `sending`), renders and
//! sends each, then records the outcome. A dispatcher that dies mid-send
//! leaves its pages `sending`; once the lease runs out another claim takes
//! them again, and channels make a repeat of the same page id harmless.

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::{Notify, watch};

use super::ids::ReplyKey;
use super::{Channel, Message, Templates, context};
use crate::clock::Clock;
use crate::people::ChannelKind;
use crate::rules::Rules;
use crate::store::{Delivery, PageRecord, Store, StoreError};

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
    pub rules: Arc<Rules>,
    pub templates: Arc<Templates>,
    pub channels: Channels,
    pub clock: Arc<dyn Clock>,
    pub public_url: String,
    /// Names this worker in leases.
    pub owner: String,
    pub lease: TimeDelta,
    /// Signs Message-IDs.
    pub key: ReplyKey,
    /// Domain of the Message-IDs.
    pub id_domain: String,
    /// Signalled when new pages are queued.
    pub wake: Arc<Notify>,
}

impl Dispatcher {
    /// Delivers everything queued now; returns how many pages it handled.
    /// A claimed batch is sent concurrently and its outcomes are recorded
    /// in one transaction.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut handled = 0;
        loop {
            let pages = self.store.claim_pages(self.clock.now(), &self.owner, self.lease, 64).await?;
            if pages.is_empty() {
                return Ok(handled);
            }
            let mut sends = tokio::task::JoinSet::new();
            for page in pages {
                let this = self.clone();
                sends.spawn(async move {
                    let outcome = this.deliver(&page).await;
                    (page, outcome)
                });
            }
            let mut outcomes = Vec::new();
            while let Some(joined) = sends.join_next().await {
                let Ok((page, outcome)) = joined else { continue };
                let outcome = outcome?;
                let status = match &outcome {
                    Delivery::Sent { .. } => "sent",
                    Delivery::Failed { error } => {
                        tracing::warn!(page = page.id, case = page.case.0, channel = page.channel.as_str(), %error, "page failed");
                        "failed"
                    }
                };
                metrics::counter!("tocsin_pages_total", "channel" => page.channel.as_str(), "status" => status)
                    .increment(1);
                outcomes.push((page.id, outcome));
            }
            handled += outcomes.len();
            self.store.finish_pages(&self.owner, &outcomes, self.clock.now()).await?;
        }
    }

    async fn deliver(&self, page: &PageRecord) -> Result<Delivery, StoreError> {
        let Some(case) = self.store.case(page.case).await? else {
            return Ok(Delivery::Failed { error: format!("case {} is gone", page.case) });
        };
        let person = page.person.as_ref().and_then(|p| self.rules.people.get(p));
        let ctx = context(&case, page, person, &self.public_url);
        let body = match self.templates.render(page.kind, page.channel, &ctx) {
            Ok(b) => b,
            Err(e) => return Ok(Delivery::Failed { error: format!("template: {e}") }),
        };
        let message_id =
            (page.channel == ChannelKind::Email).then(|| self.key.message_id(page.case, page.id, &self.id_domain));
        let msg = Message {
            page_id: page.id,
            case: page.case,
            kind: page.kind,
            channel: page.channel,
            to: page.address.clone(),
            body,
            message_id: message_id.clone(),
        };
        Ok(match self.channels.get(page.channel).send(&msg).await {
            Ok(provider_id) => Delivery::Sent { provider_id, message_id },
            Err(e) => Delivery::Failed { error: e.to_string() },
        })
    }

    /// Runs until `shutdown` turns true: delivers, then waits for new pages
    /// or for leases of stuck pages to run out.
    pub async fn run(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "dispatcher cannot reach the store; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            // Look again soon even without a signal: `tocsin ingest` in
            // another process queues pages too, and leases of stuck pages
            // run out.
            let recheck = self.clock.now() + self.lease.min(TimeDelta::seconds(1));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.clock.sleep_until(recheck) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
