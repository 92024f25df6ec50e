//! Rehearsing rules (`tocsin simulate`): one case run through the engine
//! the daemon runs, on a fake clock, with nobody answering unless told.
//!
//! Not a model of the engine but the engine itself: the case service
//! decides with the core, the real scheduler fires the timers through
//! `CaseService::fire_all`, and the real dispatcher renders the templates
//! and bundles or holds back SMS, into a channel that records instead of
//! sending. It all runs over a private in-memory SQLite database
//! ([`SqliteStore::open_private`]), never the user's: the SMS opt-outs and
//! overrides of a configured database are copied in first, read-only. So
//! whatever the daemon learns (urgency, support hours, new timers) a
//! rehearsal shows without a line changed here.

pub mod compare;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::app::{Delivering, Services};
use crate::case::decide::NewCase;
use crate::case::{Actor, CaseNumber, PageKind, Via};
use crate::clock::{Clock, FakeClock};
use crate::config::Config;
use crate::escalation::Target;
use crate::notify::dispatcher::Channels;
use crate::notify::ids::ReplyKey;
use crate::notify::templates::Live;
use crate::notify::{Channel, Message, SendError, Templates};
use crate::people::PersonId;
use crate::rules::Rules;
use crate::scheduler::Scheduler;
use crate::service::cases::Action;
use crate::service::verify::Verifier;
use crate::sla::{Priority, SlaClock};
use crate::store::sqlite::{Scratch, SqliteStore};
use crate::store::{OverrideRecord, Store};

/// What a rehearsal runs on: the rules and templates, the config's
/// delivery settings (`[sms] min_interval` bundles SMS as in the daemon),
/// and what a configured database knows that changes who is reached.
#[derive(Clone)]
pub struct Stage {
    pub config: Config,
    pub rules: Arc<Rules>,
    /// Rendered as the dispatcher renders them.
    pub templates: Live,
    /// People who replied STOP: never paged by SMS.
    pub sms_off: BTreeSet<PersonId>,
    /// On-call overrides, as the database holds them.
    pub overrides: Vec<OverrideRecord>,
}

/// One case to rehearse.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub at: DateTime<Utc>,
    pub subject: String,
    pub body: String,
    pub requester: String,
    pub priority: Option<Priority>,
    /// The first person a step paged acknowledges this long after opening.
    pub ack_after: Option<TimeDelta>,
    /// The case is resolved this long after opening.
    pub resolve_after: Option<TimeDelta>,
    /// The person working the case (its assignee, else whoever the latest
    /// step paged) replies to the customer this long after it opens.
    pub reply_after: Option<TimeDelta>,
    /// How long to run.
    pub run_for: TimeDelta,
}

/// Something that happens in a rehearsal. `kind` is `page` (an escalation
/// step reached a person), `message` (any other message sent, named in
/// `message`: a breach notice, a warning, the receipt), `deadline`,
/// `warning`, `breach`, `exhausted` (the policy ran out), `unreached` (a
/// step's target reached nobody), `handoff` (a schedule the policy pages
/// changed hands before a later step ran), `acknowledged`, `resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Happening {
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub person: Option<String>,
    pub channel: Option<&'static str>,
    /// 1-based, as the API counts steps.
    pub step: Option<u32>,
    /// 0 on the first pass through the policy, 1 on its first repeat, ...
    pub round: Option<u32>,
    /// For `kind = "message"`: which message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
    /// For a page or message: the text as it would be sent (an email's
    /// subject line).
    pub text: String,
}

fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A finished rehearsal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rehearsal {
    /// In time order.
    pub happenings: Vec<Happening>,
    /// The zone of the case's plan calendar: the clock its text is read on.
    pub tz: Tz,
    /// Priority, plan and policy the rules gave the case.
    pub summary: String,
}

/// A message the dispatcher handed to a channel.
struct Sent {
    at: DateTime<Utc>,
    msg: Message,
}

/// A channel that keeps what it is given and sends nothing.
struct Recorder {
    clock: FakeClock,
    sent: Mutex<Vec<Sent>>,
}

#[async_trait]
impl Channel for Recorder {
    async fn send(&self, msg: &Message) -> Result<Option<String>, SendError> {
        let at = self.clock.now();
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(Sent { at, msg: msg.clone() });
        Ok(Some(format!("rehearsal-{}", msg.page_id)))
    }
}

impl Stage {
    /// The stage of `config`: its rules (or those in `rules`), templates,
    /// and, when `with_database`, the SMS opt-outs and overrides of its
    /// database, read without migrating or writing anything.
    pub async fn load(
        config: &Config,
        rules: Rules,
        templates: Templates,
        with_database: bool,
    ) -> anyhow::Result<Stage> {
        let (mut sms_off, mut overrides) = (BTreeSet::new(), Vec::new());
        if with_database
            && let Some(store) = crate::store::open_read_only(&config.database).await.map_err(anyhow::Error::msg)?
        {
            sms_off = store.sms_opt_outs().await?;
            overrides = store.overrides(DateTime::<Utc>::MIN_UTC).await?;
        }
        let templates = Live::new(&config.paths.templates, templates);
        Ok(Stage { config: config.clone(), rules: Arc::new(rules), templates, sms_off, overrides })
    }
}

/// A private in-memory database to rehearse on, emptied before each
/// rehearsal: one per worker serves many (the matrix runs thousands).
pub struct Bench {
    store: Arc<dyn Store>,
    scratch: Scratch,
}

impl Bench {
    pub async fn new() -> anyhow::Result<Bench> {
        let (store, scratch) = SqliteStore::open_private().await?;
        Ok(Bench { store: Arc::new(store), scratch })
    }
}

/// Runs `scenario` on `stage`, on a database of its own.
pub async fn rehearse(stage: &Stage, scenario: &Scenario) -> anyhow::Result<Rehearsal> {
    rehearse_on(&Bench::new().await?, stage, scenario).await
}

/// Runs `scenario` on `stage` on `bench`, emptied first.
pub async fn rehearse_on(bench: &Bench, stage: &Stage, scenario: &Scenario) -> anyhow::Result<Rehearsal> {
    bench.scratch.clear().await?;
    let store = bench.store.clone();
    for person in &stage.sms_off {
        store.set_sms_opt_out(person, true, scenario.at).await?;
    }
    for o in &stage.overrides {
        store.insert_override(o).await?;
    }
    let clock = FakeClock::new(scenario.at);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    // Signs reply addresses in emails; any key does, nothing is sent.
    let key = ReplyKey::new(b"tocsin-rehearsal");
    let live = crate::rules::LiveRules::shared(stage.rules.clone());
    let services = Services::build(
        &stage.config,
        live.clone(),
        store.clone(),
        shared.clone(),
        key.clone(),
        Arc::new(Verifier::none()),
    )?;
    let cases = services.cases;
    let owner = "rehearsal".to_owned();
    let (fired, _) = watch::channel(0);
    let scheduler = Scheduler {
        cases: cases.clone(),
        store: store.clone(),
        clock: shared.clone(),
        wake: Arc::new(Notify::new()),
        owner: owner.clone(),
        lease: TimeDelta::from_std(stage.config.scheduler.lease)?,
        batch: stage.config.scheduler.batch,
        fired,
    };
    let recorder = Arc::new(Recorder { clock: clock.clone(), sent: Mutex::new(Vec::new()) });
    let dispatcher = Arc::new(crate::app::dispatcher(
        &stage.config,
        Delivering {
            store: store.clone(),
            rules: live.clone(),
            templates: stage.templates.clone(),
            channels: Channels { sms: recorder.clone(), email: recorder.clone() },
            clock: shared.clone(),
            owner,
            key,
            wake: Arc::new(Notify::new()),
        },
    )?);

    let new = NewCase {
        subject: scenario.subject.clone(),
        body: scenario.body.clone(),
        requester: scenario.requester.to_ascii_lowercase(),
        priority: scenario.priority.clone(),
        actor: Actor::Customer(scenario.requester.clone()),
        via: Via::Api,
        receipt: true,
        unverified: None,
    };
    let case = cases.open(new).await?;
    let number = case.number;
    dispatcher.run_once().await?;

    let end = scenario.at + scenario.run_for;
    let mut actions: Vec<(DateTime<Utc>, Scripted)> = Vec::new();
    if let Some(after) = scenario.ack_after {
        actions.push((scenario.at + after, Scripted::Ack));
    }
    if let Some(after) = scenario.resolve_after {
        actions.push((scenario.at + after, Scripted::Resolve));
    }
    if let Some(after) = scenario.reply_after {
        actions.push((scenario.at + after, Scripted::Reply));
    }
    actions.sort_by_key(|(at, _)| *at);
    let mut actions = actions.into_iter().peekable();
    let mut happenings = Vec::new();
    let mut deadlines = BTreeSet::new();
    note_deadlines(store.as_ref(), number, end, &mut deadlines).await?;
    let mut stuck = 0u32;
    loop {
        let timer = store.next_timer_at().await?;
        let page = store.next_page_at().await?;
        let action = actions.peek().map(|(at, _)| *at);
        let Some(next) = [timer, page, action].into_iter().flatten().min() else { break };
        if next > end {
            break;
        }
        // Something due now that nothing settles would spin here forever.
        stuck = if next <= clock.now() { stuck + 1 } else { 0 };
        if stuck > 1000 {
            anyhow::bail!("the rehearsal stopped moving at {next}: a timer or page there is never settled");
        }
        clock.set(next);
        while let Some((_, what)) = actions.next_if(|(at, _)| *at <= next) {
            if let Some(h) = what.perform(&cases, store.as_ref(), number, next).await? {
                happenings.push(h);
            }
        }
        scheduler.run_due().await?;
        dispatcher.run_once().await?;
        note_deadlines(store.as_ref(), number, end, &mut deadlines).await?;
    }

    let sent = std::mem::take(&mut *recorder.sent.lock().unwrap_or_else(|e| e.into_inner()));
    let pages: std::collections::BTreeMap<i64, crate::store::PageRecord> =
        store.pages_of(number).await?.into_iter().map(|p| (p.id, p)).collect();
    for s in sent {
        for id in std::iter::once(s.msg.page_id).chain(s.msg.bundled.iter().copied()) {
            let Some(page) = pages.get(&id) else { continue };
            let text = if s.msg.body.subject.is_empty() { s.msg.body.text.clone() } else { s.msg.body.subject.clone() };
            let is_page = page.kind == PageKind::Page;
            happenings.push(Happening {
                at: s.at,
                kind: if is_page { "page" } else { "message" },
                person: page.person.as_ref().map(ToString::to_string),
                channel: Some(page.channel.as_str()),
                step: page.position.map(|p| p.step + 1),
                round: page.position.map(|p| p.round),
                message: (!is_page).then(|| page.kind.as_str()),
                text,
            });
        }
    }
    for e in store.timeline(number).await? {
        let kind = match e.kind.as_str() {
            "warning" => "warning",
            "breach" => "breach",
            "exhausted" => "exhausted",
            "paged" if e.text.contains("nobody") => "unreached",
            _ => continue,
        };
        happenings.push(Happening {
            at: e.at,
            kind,
            person: None,
            channel: None,
            step: None,
            round: None,
            message: None,
            text: e.text,
        });
    }
    for (clock_name, at) in deadlines {
        happenings.push(Happening {
            at,
            kind: "deadline",
            person: None,
            channel: None,
            step: None,
            round: None,
            message: None,
            text: format!("{clock_name} deadline"),
        });
    }
    let case = store.case(number).await?.ok_or_else(|| anyhow::anyhow!("the rehearsed case is gone"))?;
    happenings.extend(handoffs(stage, &case.policy, &happenings).await);
    // Stable: what happened at one instant keeps the order it happened in.
    happenings.sort_by_key(|h| (h.at, rank(h.kind)));
    let plan = stage.rules.plans.get(&case.plan);
    let tz = plan.and_then(|p| stage.rules.calendars.get(&p.calendar)).map_or(Tz::UTC, |c| c.tz);
    let calendar = plan.map_or("-", |p| p.calendar.as_str());
    let summary = format!(
        "case for {} ({}): {} on plan {} (calendar {calendar}), policy {}",
        case.requester,
        case.customer.as_deref().unwrap_or("no customer"),
        case.priority,
        case.plan,
        case.policy
    );
    Ok(Rehearsal { happenings, tz, summary })
}

/// Orders what happens at one instant: the cause before its effect.
fn rank(kind: &str) -> u8 {
    match kind {
        "handoff" => 0,
        "acknowledged" | "resolved" => 1,
        "deadline" => 2,
        "breach" | "warning" | "exhausted" => 3,
        "unreached" => 4,
        _ => 5,
    }
}

/// A scripted answer.
#[derive(Debug, Clone, Copy)]
enum Scripted {
    Ack,
    Reply,
    Resolve,
}

impl Scripted {
    async fn perform(
        self,
        cases: &crate::service::cases::CaseService,
        store: &dyn Store,
        number: CaseNumber,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<Happening>> {
        let happening = |kind, person: Option<String>, text: String| Happening {
            at,
            kind,
            person,
            channel: None,
            step: None,
            round: None,
            message: None,
            text,
        };
        match self {
            Scripted::Ack => {
                // Whoever the latest step paged answers.
                let pages = store.pages_of(number).await?;
                let latest = pages.iter().filter(|p| p.kind == PageKind::Page).max_by_key(|p| (p.position, p.id));
                let Some(by) = latest.and_then(|p| p.person.clone()) else {
                    return Ok(Some(happening(
                        "acknowledged",
                        None,
                        "nobody was paged, so nobody acknowledges".into(),
                    )));
                };
                let action = Action::Ack { by: by.clone(), text: None };
                Ok(Some(match cases.act(number, &action, &Actor::Person(by.clone()), Via::Api).await {
                    Ok(_) => happening("acknowledged", Some(by.to_string()), format!("{by} acknowledges")),
                    Err(e) => happening("acknowledged", Some(by.to_string()), format!("cannot acknowledge: {e}")),
                }))
            }
            Scripted::Reply => {
                // The assignee answers; on a case nobody took, whoever the
                // latest step paged.
                let assignee = store.case(number).await?.and_then(|c| c.assignee);
                let pages = store.pages_of(number).await?;
                let latest = pages.iter().filter(|p| p.kind == PageKind::Page).max_by_key(|p| (p.position, p.id));
                let Some(by) = assignee.or_else(|| latest.and_then(|p| p.person.clone())) else {
                    return Ok(Some(happening(
                        "replied",
                        None,
                        "nobody was paged or assigned, so nobody replies".into(),
                    )));
                };
                let action = Action::Reply { by: by.clone(), text: "(the reply to the customer)".into() };
                Ok(Some(match cases.act(number, &action, &Actor::Person(by.clone()), Via::Api).await {
                    Ok(_) => happening("replied", Some(by.to_string()), format!("{by} replies to the customer")),
                    Err(e) => happening("replied", Some(by.to_string()), format!("cannot reply: {e}")),
                }))
            }
            Scripted::Resolve => {
                let action = Action::Resolve { text: None };
                let actor = Actor::Token("simulate".into());
                Ok(Some(match cases.act(number, &action, &actor, Via::Api).await {
                    Ok(_) => happening("resolved", None, "the case is resolved".into()),
                    Err(e) => happening("resolved", None, format!("cannot resolve: {e}")),
                }))
            }
        }
    }
}

/// Adds each deadline of the case that falls by `end` and is not known yet.
async fn note_deadlines(
    store: &dyn Store,
    number: CaseNumber,
    end: DateTime<Utc>,
    seen: &mut BTreeSet<(&'static str, DateTime<Utc>)>,
) -> anyhow::Result<()> {
    let Some(case) = store.case(number).await? else { return Ok(()) };
    let d = case.deadlines;
    for (clock, at) in [(SlaClock::Respond, d.respond), (SlaClock::Update, d.update), (SlaClock::Resolve, d.resolve)] {
        if let Some(at) = at.filter(|at| *at <= end) {
            seen.insert((clock.as_str(), at));
        }
    }
    Ok(())
}

/// The hand-offs on a schedule `policy` pages that fall between the case
/// opening and the last step that paged that schedule: each changed whom
/// a later step reached.
async fn handoffs(stage: &Stage, policy: &str, happenings: &[Happening]) -> Vec<Happening> {
    let Some(policy) = stage.rules.policies.get(policy) else { return Vec::new() };
    let Some(start) = happenings.iter().map(|h| h.at).min() else { return Vec::new() };
    let overrides = crate::service::overrides::records_by_schedule(&stage.overrides);
    let mut out = Vec::new();
    let names: BTreeSet<&str> = policy
        .steps
        .iter()
        .flat_map(|s| &s.targets)
        .filter_map(|t| match t {
            Target::Schedule(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    for name in names {
        let Some(schedule) = stage.rules.schedules.get(name) else { continue };
        // The last instant a step ran that pages this schedule.
        let steps: Vec<u32> = policy
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.targets.iter().any(|t| matches!(t, Target::Schedule(n) if n == name)))
            .map(|(i, _)| i as u32 + 1)
            .collect();
        let last = happenings
            .iter()
            .filter(|h| matches!(h.kind, "page" | "unreached") && h.step.is_none_or(|s| steps.contains(&s)))
            .map(|h| h.at)
            .max();
        let Some(last) = last else { continue };
        let none = Vec::new();
        let these = overrides.get(name).unwrap_or(&none);
        let spans = schedule.spans(these, start, last + TimeDelta::seconds(1));
        for pair in spans.windows(2) {
            let (before, after) = (&pair[0].2, &pair[1].2);
            let who = |p: &Option<PersonId>| p.as_ref().map_or_else(|| "nobody".to_owned(), ToString::to_string);
            out.push(Happening {
                at: pair[1].0,
                kind: "handoff",
                person: after.as_ref().map(ToString::to_string),
                channel: None,
                step: None,
                round: None,
                message: None,
                text: format!("schedule {name}: {} hands over to {}", who(before), who(after)),
            });
        }
    }
    out
}

impl Rehearsal {
    /// One line per happening, instants on the plan calendar's clock.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.summary);
        for h in &self.happenings {
            out += &h.line(self.tz);
            out.push('\n');
        }
        out
    }

    /// The JSON array `--format json` prints.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.happenings).unwrap_or_else(|_| "[]".into())
    }
}

impl Happening {
    /// `at  kind  person  channel  step  text`, `at` on `tz`'s clock.
    pub fn line(&self, tz: Tz) -> String {
        let at = self.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z");
        let step = match (self.step, self.round) {
            (Some(s), Some(0)) => format!("step {s}"),
            (Some(s), Some(r)) => format!("step {s} (repeat {r})"),
            _ => String::new(),
        };
        let kind = self.message.unwrap_or(self.kind);
        format!(
            "{at}  {kind:<12} {:<8} {:<6} {step:<18} {}",
            self.person.as_deref().unwrap_or("-"),
            self.channel.unwrap_or("-"),
            self.text.replace('\n', " ")
        )
        .trim_end()
        .to_owned()
    }
}
