//! Where each SLA clock of a case stands, as the API and the dashboard
//! show it: its deadline, when it was met, and when it was breached.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Case;
use crate::sla::SlaClock;

/// One clock of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockState {
    /// The deadline of the current window (none while the clock is stopped
    /// with nothing due, such as the update clock before an acknowledgement).
    pub due: Option<DateTime<Utc>>,
    /// When the current window was met: for respond the acknowledgement or
    /// the first reply (the plan's `respond_met_by`), for update the last
    /// note or reply that counted (`update_met_by`), for resolve the
    /// resolution.
    pub met_at: Option<DateTime<Utc>>,
    /// When the current window was breached: its deadline, once the breach
    /// was recorded.
    pub breached_at: Option<DateTime<Utc>>,
}

/// The three clocks of a case (`"sla"` in the case JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlaState {
    pub respond: ClockState,
    pub update: ClockState,
    pub resolve: ClockState,
}

impl SlaState {
    pub fn of(case: &Case) -> Self {
        let state = |clock: SlaClock, due: Option<DateTime<Utc>>, met_at: Option<DateTime<Utc>>| {
            let breached = case.warned.contains(&format!("{}:breach", clock.as_str()));
            ClockState { due, met_at, breached_at: due.filter(|_| breached) }
        };
        SlaState {
            respond: state(SlaClock::Respond, case.deadlines.respond, case.respond_met_at),
            update: state(SlaClock::Update, case.deadlines.update, case.update_met_at),
            resolve: state(SlaClock::Resolve, case.deadlines.resolve, case.resolved_at),
        }
    }
}
