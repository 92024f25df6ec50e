//! The audit log: what was done to tokens, sign-ins and overrides, and what
//! an admin or integration token did for someone else, appended to the
//! store's `audit` table. Read back by `GET /api/v1/audit` and `tocsin audit`.
//!
//! Recording never fails the action it records: the action already
//! happened, so a store error here is logged (as an error, with the entry)
//! and the caller goes on.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::audit::{AuditAction, AuditEntry};
use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// The most entries one read returns.
pub const MAX_ENTRIES: u32 = 10_000;
/// A read without `from` covers this long before `to`.
pub const DEFAULT_SPAN: TimeDelta = TimeDelta::days(7);

/// Appends `entry`; a failure is logged, never returned.
pub async fn append(store: &dyn Store, entry: AuditEntry) {
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, action = %entry.action, actor = %entry.actor, subject = %entry.subject,
            "could not append to the audit log");
    }
}

/// Reading and writing the audit log.
pub struct Audit {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

/// Why a read was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The bounds make no window; the text says which and why.
    #[error("{0}")]
    Window(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Audit {
    /// Records `action` by `actor` on `subject`, now.
    pub async fn record(&self, actor: &str, action: AuditAction, subject: &str, detail: &str, client: Option<&str>) {
        let entry = AuditEntry {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action,
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            client: client.map(str::to_owned),
        };
        append(self.store.as_ref(), entry).await;
    }

    /// The entries from `from` to `to`, both included: `to` defaults to
    /// now and `from` to a week before `to`. At most [`MAX_ENTRIES`],
    /// oldest first.
    pub async fn between(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>, Vec<AuditEntry>), AuditError> {
        let to = to.unwrap_or_else(|| self.clock.now());
        let from = from.unwrap_or(to - DEFAULT_SPAN);
        if from > to {
            return Err(AuditError::Window(format!(
                "from ({}) must not come after to ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        let entries = self.store.audit(from, to, MAX_ENTRIES).await?;
        Ok((from, to, entries))
    }
}
