//! On-call overrides: adding, listing and removing them, and who is on call
//! with them applied. One implementation for the API, the dashboard and the
//! CLI, so each door refuses the same requests (the check itself is the
//! core's [`OverrideRequest::check`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::audit::{AuditAction, AuditEntry};
use crate::clock::Clock;
use crate::escalation::Overrides;
use crate::overrides::{FieldError, OverrideRequest};
use crate::people::PersonId;
use crate::rules::LiveRules;
use crate::schedule::Override;
use crate::store::{OverrideRecord, Store, StoreError};

/// Why an override was not stored.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Overrides, and on-call answers that honour them.
pub struct OverrideService {
    pub store: Arc<dyn Store>,
    pub rules: LiveRules,
    pub clock: Arc<dyn Clock>,
}

impl OverrideService {
    /// Checks and stores `request`, made by `created_by` (a person id, a
    /// token name or "cli").
    pub async fn add(&self, request: OverrideRequest, created_by: &str) -> Result<OverrideRecord, OverrideError> {
        let person = request.check(&self.rules.get())?;
        let record = OverrideRecord {
            id: 0,
            schedule: request.schedule,
            person,
            start: request.start,
            end: request.end,
            reason: request.reason,
            created_by: created_by.to_owned(),
            created_at: self.clock.now(),
        };
        let stored = self.store.insert_override(&record).await?;
        tracing::info!(id = stored.id, schedule = %stored.schedule, person = %stored.person, by = created_by, "override created");
        let detail = format!(
            "{} on call on {} from {} to {}",
            stored.person,
            stored.schedule,
            stored.start.to_rfc3339(),
            stored.end.to_rfc3339()
        );
        self.record(created_by, AuditAction::OverrideAdded, stored.id, detail).await;
        Ok(stored)
    }

    /// Overrides that have not ended, on `schedule` or on every schedule.
    pub async fn list(&self, schedule: Option<&str>) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut all = self.store.overrides(self.clock.now()).await?;
        all.retain(|o| schedule.is_none_or(|s| s == o.schedule));
        Ok(all)
    }

    /// Removes override `id` for `by` (a person id, a token name or
    /// "cli"); false when there was none.
    pub async fn remove(&self, id: i64, by: &str) -> Result<bool, StoreError> {
        let removed = self.store.delete_override(id).await?;
        if removed {
            tracing::info!(id, by, "override removed");
            self.record(by, AuditAction::OverrideRemoved, id, String::new()).await;
        }
        Ok(removed)
    }

    async fn record(&self, by: &str, action: AuditAction, id: i64, detail: String) {
        let entry = AuditEntry {
            at: self.clock.now(),
            actor: by.to_owned(),
            action,
            subject: format!("override {id}"),
            detail,
            client: None,
        };
        super::audit::append(self.store.as_ref(), entry).await;
    }

    /// The overrides that matter from `from` on, by schedule.
    pub async fn by_schedule(&self, from: DateTime<Utc>) -> Result<Overrides, StoreError> {
        by_schedule(self.store.as_ref(), from).await
    }

    /// Who is on call at `at` on `schedule` (or on every schedule, by
    /// name), overrides applied.
    pub async fn on_call(
        &self,
        schedule: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<PersonId>)>, OverrideError> {
        if let Some(name) = schedule
            && !self.rules.get().schedules.contains_key(name)
        {
            let known = self.rules.get().schedules.keys().cloned().collect::<Vec<_>>().join(", ");
            let message = format!("unknown schedule {name:?}; use one of {known}");
            return Err(FieldError { field: "schedule", message }.into());
        }
        let overrides = self.by_schedule(at).await?;
        let none = Vec::new();
        Ok(self
            .rules
            .get()
            .schedules
            .values()
            .filter(|s| schedule.is_none_or(|name| name == s.name))
            .map(|s| (s.name.clone(), s.on_call(overrides.get(&s.name).unwrap_or(&none), at)))
            .collect())
    }
}

/// The stored overrides that end after `from`, by schedule: what the case
/// service, the digest and the schedule views resolve targets with.
pub async fn by_schedule(store: &dyn Store, from: DateTime<Utc>) -> Result<Overrides, StoreError> {
    Ok(records_by_schedule(&store.overrides(from).await?))
}

/// `records` by schedule, in the order given.
pub fn records_by_schedule(records: &[OverrideRecord]) -> Overrides {
    let mut map = Overrides::new();
    for o in records {
        map.entry(o.schedule.clone()).or_default().push(Override {
            person: o.person.clone(),
            start: o.start,
            end: o.end,
        });
    }
    map
}
