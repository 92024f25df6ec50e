//! The case service: the one place every door (API, SMS, email reply, dashboard,
//! timers) goes through to change a case.
//!
//! Each change is decided by the pure core on the case as stored, then
//! committed with the version it was decided on. If another change got
//! there first, the store answers `Conflict` and the service decides again on
//! the new state: so two racing acknowledgements give one success and one
//! "already acknowledged by …", never two assignees.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::Notify;

use crate::case::decide::NewCase;
use crate::case::{ActionError, Actor, Case, CaseNumber, Facts, Filing, RequestKey, Timer, Transition, Via};
use crate::clock::Clock;
use crate::escalation::Position;
use crate::people::PersonId;
use crate::rules::LiveRules;
use crate::sla::Priority;
use crate::store::{CaseQuery, Store, StoreError};
use crate::token::{TokenInfo, TokenRole};

/// How often a change is decided again after losing a race.
const RETRIES: usize = 16;

/// What can be done to a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Ack {
        by: PersonId,
        text: Option<String>,
    },
    Note {
        text: String,
    },
    /// Text for the customer, mailed in the case's thread by `by`.
    Reply {
        by: PersonId,
        text: String,
    },
    /// A reply `by` already sent from their own mail (a reply-all):
    /// recorded, and sent to nobody.
    RecordReply {
        by: PersonId,
        text: String,
    },
    Resolve {
        text: Option<String>,
    },
    Reopen {
        text: Option<String>,
    },
    /// Escalate past `from` (default: the current step).
    Escalate {
        from: Option<Position>,
    },
    /// Waiting on the customer: pauses the resolve clock.
    Wait {
        text: Option<String>,
    },
    /// No longer waiting.
    Resume {
        text: Option<String>,
    },
    /// New priority and/or plan; deadlines are recomputed.
    Change {
        priority: Option<Priority>,
        plan: Option<String>,
    },
    /// Hold warnings to the assignee for a while.
    Snooze {
        by: PersonId,
        hold: chrono::TimeDelta,
    },
    /// Mail from the customer (or an automatic message) joins the case.
    Mail {
        from: String,
        text: String,
        automatic: Option<String>,
        reopen_within: chrono::TimeDelta,
    },
    /// Mail over a new-case limit joins the timeline of its sender's open
    /// case, saying why (`why`), and pages nobody.
    LimitedMail {
        from: String,
        subject: String,
        text: String,
        why: String,
    },
    /// Give the case to `to` (assignment, `TAKE`, `ASSIGN`); an open case
    /// is acknowledged by it.
    Assign {
        to: PersonId,
    },
}

impl Action {
    /// The action's name, as the API's routes and the audit log call it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Ack { .. } => "ack",
            Action::Note { .. } => "note",
            Action::Reply { .. } => "reply",
            Action::RecordReply { .. } => "reply_all",
            Action::Resolve { .. } => "resolve",
            Action::Reopen { .. } => "reopen",
            Action::Escalate { .. } => "escalate",
            Action::Wait { .. } => "wait",
            Action::Resume { .. } => "resume",
            Action::Change { .. } => "change",
            Action::Snooze { .. } => "snooze",
            Action::Mail { .. } => "mail",
            Action::LimitedMail { .. } => "limited_mail",
            Action::Assign { .. } => "assign",
        }
    }
}

/// Why the case service could not do it.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("no case {0}")]
    NotFound(CaseNumber),
    #[error(transparent)]
    Refused(#[from] ActionError),
    #[error("the case keeps changing under this request; try again")]
    Busy,
    /// The person may not do this (assigning someone else's case).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Signals for the background workers.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    pub scheduler: Arc<Notify>,
    pub dispatcher: Arc<Notify>,
}

/// Changes cases.
pub struct CaseService {
    pub store: Arc<dyn Store>,
    pub rules: LiveRules,
    pub clock: Arc<dyn Clock>,
    pub wake: Wakers,
}

impl CaseService {
    fn signal(&self, tr: &Transition) {
        if !tr.timers.is_empty() {
            self.wake.scheduler.notify_one();
        }
        if !tr.pages.is_empty() {
            self.wake.dispatcher.notify_one();
        }
    }

    /// Whether `viewer` may see and change `case`: the one rule the API and
    /// the dashboard share. Managers, admins and integrations see every
    /// case; an engineer sees the cases assigned to them and those that
    /// paged them; a token without a person, or a feed token, sees none.
    pub async fn visible_to(&self, viewer: &TokenInfo, case: &Case) -> Result<bool, StoreError> {
        match viewer.role {
            TokenRole::Manager | TokenRole::Admin | TokenRole::Integration => return Ok(true),
            // A feed token reads one calendar feed and no case.
            TokenRole::Feed => return Ok(false),
            TokenRole::Engineer => {}
        }
        let Some(me) = &viewer.person else { return Ok(false) };
        if case.assignee.as_ref() == Some(me) {
            return Ok(true);
        }
        Ok(self.store.pages_of(case.number).await?.iter().any(|p| p.person.as_ref() == Some(me)))
    }

    /// Cases `viewer` may see that meet `q`, newest first: the rule of
    /// [`Self::visible_to`], asked of the store within the one query (so a
    /// page of an engineer's cases is full, and costs one statement).
    pub async fn find(&self, viewer: &TokenInfo, mut q: CaseQuery) -> Result<Vec<Case>, StoreError> {
        match viewer.role {
            TokenRole::Manager | TokenRole::Admin | TokenRole::Integration => {}
            TokenRole::Feed => return Ok(Vec::new()),
            TokenRole::Engineer => match &viewer.person {
                Some(me) => q.seen_by = Some(me.clone()),
                None => return Ok(Vec::new()),
            },
        }
        self.store.find_cases(&q).await
    }

    /// Whether person `by` may give `case` to `to`: a manager may assign
    /// anyone; an engineer may take a case they can see (assigned to them,
    /// or that paged them) and give their own cases away.
    async fn may_assign(&self, by: &PersonId, case: &Case, to: &PersonId) -> Result<(), CaseError> {
        let role = self.rules.get().people.get(by).map(|p| p.role);
        if role == Some(crate::people::Role::Manager) || case.assignee.as_ref() == Some(by) {
            return Ok(());
        }
        if by == to {
            let paged = self.store.pages_of(case.number).await?.iter().any(|p| p.person.as_ref() == Some(by));
            if paged {
                return Ok(());
            }
            return Err(CaseError::Forbidden(format!(
                "case {} did not page you and is not yours: ask a manager to assign it",
                case.number
            )));
        }
        Err(CaseError::Forbidden(format!(
            "case {} is not yours to give away: only its assignee or a manager can assign it",
            case.number
        )))
    }

    /// Who replied STOP to an SMS.
    pub async fn sms_off(&self) -> Result<std::collections::BTreeSet<PersonId>, StoreError> {
        self.store.sms_opt_outs().await
    }

    /// Now, to the millisecond the store keeps, so an answer shows the
    /// same instants a later read does.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(3)
    }

    /// Opens a case and commits its first effects.
    pub async fn open(&self, new: NewCase) -> Result<Case, CaseError> {
        self.open_filing(new, None).await
    }

    /// Opens a case that files inbound mail `filing`, in one transaction.
    pub async fn open_filing(&self, new: NewCase, filing: Option<Filing>) -> Result<Case, CaseError> {
        self.open_with(new, filing, None).await
    }

    /// Opens a case once per client `request` key: when the key was used
    /// before, nothing is opened and the store answers `Repeated` with the
    /// case of that first request.
    pub async fn open_once(&self, new: NewCase, request: RequestKey) -> Result<Case, CaseError> {
        self.open_with(new, None, Some(request)).await
    }

    async fn open_with(
        &self,
        new: NewCase,
        filing: Option<Filing>,
        request: Option<RequestKey>,
    ) -> Result<Case, CaseError> {
        let now = self.now();
        let overrides = super::overrides::by_schedule(self.store.as_ref(), now).await?;
        let sms_off = self.sms_off().await?;
        let facts = Facts { rules: &self.rules.get(), overrides: &overrides, sms_off: &sms_off, now };
        let mut tr = facts.open(new)?;
        tr.filing = filing;
        tr.request = request;
        let case = self.store.create_case(&tr).await?;
        self.signal(&tr);
        tracing::info!(case = case.number.0, priority = %case.priority, policy = %case.policy, "case opened");
        Ok(case)
    }

    /// Applies `action` by `actor` to case `number`.
    pub async fn act(&self, number: CaseNumber, action: &Action, actor: &Actor, via: Via) -> Result<Case, CaseError> {
        self.act_filing(number, action, actor, via, None).await
    }

    /// As [`CaseService::act`], filing inbound mail `filing` in the same transaction.
    pub async fn act_filing(
        &self,
        number: CaseNumber,
        action: &Action,
        actor: &Actor,
        via: Via,
        filing: Option<Filing>,
    ) -> Result<Case, CaseError> {
        for _ in 0..RETRIES {
            let case = self.store.case(number).await?.ok_or(CaseError::NotFound(number))?;
            let now = self.now();
            let overrides = super::overrides::by_schedule(self.store.as_ref(), now).await?;
            let sms_off = self.sms_off().await?;
            let facts = Facts { rules: &self.rules.get(), overrides: &overrides, sms_off: &sms_off, now };
            let tr = match action {
                Action::Ack { by, text } => facts.ack(&case, by, via, text.as_deref())?,
                Action::Note { text } => facts.note(&case, actor, via, text)?,
                Action::Reply { by, text } => facts.reply(&case, by, via, text)?,
                Action::RecordReply { by, text } => facts.replied_elsewhere(&case, by, via, text)?,
                Action::Resolve { text } => facts.resolve(&case, actor, via, text.as_deref())?,
                Action::Reopen { text } => facts.reopen(&case, actor, via, text.as_deref())?,
                Action::Wait { text } => facts.wait(&case, actor, via, text.as_deref())?,
                Action::Resume { text } => facts.resume(&case, actor, via, text.as_deref())?,
                Action::Change { priority, plan } => facts.change(&case, actor, via, priority.clone(), plan.clone())?,
                Action::Snooze { by, hold } => facts.snooze(&case, by, via, *hold)?,
                Action::Mail { from, text, automatic, reopen_within } => {
                    facts.mail(&case, from, text, automatic.as_deref(), *reopen_within)?
                }
                Action::LimitedMail { from, subject, text, why } => facts.limited_mail(&case, from, subject, text, why),
                Action::Assign { to } => {
                    if let Actor::Person(by) = actor {
                        self.may_assign(by, &case, to).await?;
                    }
                    facts.assign(&case, to, actor, via)?
                }
                Action::Escalate { from } => {
                    let from = match (from, actor) {
                        (Some(p), _) => Some(*p),
                        // A person escalates past the step that paged them,
                        // so a repeated ESC cannot skip a second step.
                        (None, Actor::Person(p)) => self.store.last_step_paging(number, p).await?,
                        (None, _) => None,
                    };
                    facts.escalate(&case, actor, via, from)?
                }
            };
            let mut tr = tr;
            tr.filing = filing.clone();
            match self.store.commit(&tr, case.version, None).await {
                Ok(case) => {
                    self.signal(&tr);
                    return Ok(case);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CaseError::Busy)
    }

    /// Fires timers this worker holds, deciding each on one reading of the
    /// overrides and opt-outs and committing them in one transaction (a
    /// commit per timer is what limited a burst of due timers). A timer
    /// whose case moved on meanwhile, such as a second timer of a case
    /// in the same batch, is fired again alone. Answers per timer whether
    /// it fired here: false when another worker took it over.
    pub async fn fire_all(&self, timers: &[Timer], owner: &str) -> Result<Vec<bool>, CaseError> {
        let now = self.now();
        let overrides = super::overrides::by_schedule(self.store.as_ref(), now).await?;
        let sms_off = self.sms_off().await?;
        let facts = Facts { rules: &self.rules.get(), overrides: &overrides, sms_off: &sms_off, now };
        let mut fired = vec![false; timers.len()];
        let (mut decided, mut slots) = (Vec::with_capacity(timers.len()), Vec::with_capacity(timers.len()));
        for (i, timer) in timers.iter().enumerate() {
            match self.store.case(timer.case).await? {
                Some(case) => {
                    decided.push((facts.fire(&case, timer), case.version, timer.id));
                    slots.push(i);
                }
                None => {
                    self.store.drop_timer(timer.id, owner).await?;
                    fired[i] = true;
                }
            }
        }
        let answers = self.store.commit_fired(&decided, owner).await?;
        let mut again = Vec::new();
        for ((tr, _, _), (i, answer)) in decided.iter().zip(slots.into_iter().zip(answers)) {
            match answer {
                Ok(_) => {
                    self.signal(tr);
                    fired[i] = true;
                }
                Err(StoreError::Conflict) => again.push(i),
                // LostLease: another worker took the timer over.
                Err(_) => {}
            }
        }
        for i in again {
            fired[i] = self.fire(&timers[i], owner).await?;
        }
        Ok(fired)
    }

    /// Fires a timer this worker holds: applies its effects and deletes it
    /// in one transaction. Returns false when another worker took it over.
    pub async fn fire(&self, timer: &Timer, owner: &str) -> Result<bool, CaseError> {
        for _ in 0..RETRIES {
            let Some(case) = self.store.case(timer.case).await? else {
                self.store.drop_timer(timer.id, owner).await?;
                return Ok(true);
            };
            let now = self.now();
            let overrides = super::overrides::by_schedule(self.store.as_ref(), now).await?;
            let sms_off = self.sms_off().await?;
            let facts = Facts { rules: &self.rules.get(), overrides: &overrides, sms_off: &sms_off, now };
            let tr = facts.fire(&case, timer);
            match self.store.commit(&tr, case.version, Some((timer.id, owner))).await {
                Ok(_) => {
                    self.signal(&tr);
                    return Ok(true);
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::LostLease) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Err(CaseError::Busy)
    }
}
