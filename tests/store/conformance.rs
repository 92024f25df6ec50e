//! One suite of store checks, run against every backend: SQLite (a temporary
//! file) and PostgreSQL (a fresh database per test, when
//! `TOCSIN_TEST_POSTGRES_URL` is set; skipped loudly otherwise). The callers
//! (cases, scheduler, dispatcher) rely on these behaviours, so both backends
//! must show exactly the same ones.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tocsin::audit::{AuditAction, AuditEntry};
use tocsin::case::{
    Case, CaseNumber, Escalation, EventKind, Filing, NewEvent, NewPage, PageKind, RequestKey, Status, TimerKind,
    Transition, Via,
};
use tocsin::config::Database;
use tocsin::escalation::Position;
use tocsin::mail::{Envelope, InboxStatus};
use tocsin::people::ChannelKind;
use tocsin::routing::Urgency;
use tocsin::sla::{Deadlines, SlaClock};
use tocsin::store::{CaseQuery, Delivery, OverrideRecord, PageStatus, Store, StoreError};
use tocsin::token::{TokenInfo, TokenRecord, TokenRole};

use crate::harness::at;
use crate::harness::pg::{FreshDb, admin_url};

/// A store under test, and what keeps its database alive.
struct Backend {
    store: Arc<dyn Store>,
    db: Database,
    _keep: Keep,
}

enum Keep {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(FreshDb),
}

impl Backend {
    async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let db = Database { url: format!("sqlite://{}", dir.path().join("t.db").display()), ..Database::default() };
        let store = tocsin::store::open(&db).await.unwrap();
        Backend { store, db, _keep: Keep::Sqlite(dir) }
    }

    async fn postgres(test: &str) -> Option<Backend> {
        let admin = admin_url(test)?;
        let fresh = FreshDb::create(&admin).await;
        let db = Database { url: fresh.url.clone(), ..Database::default() };
        let store = tocsin::store::open(&db).await.unwrap();
        Some(Backend { store, db, _keep: Keep::Postgres(fresh) })
    }

    /// Another handle on the same database, as another instance has.
    async fn reopen(&self) -> Arc<dyn Store> {
        tocsin::store::open(&self.db).await.unwrap()
    }
}

/// Runs each check once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = super::Backend::sqlite().await;
                    super::$name(&b).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    let Some(b) = super::Backend::postgres(test).await else { return };
                    super::$name(&b).await;
                }
            )*
        }
    };
}

conformance!(
    case_round_trips_to_the_millisecond,
    commit_refuses_a_stale_version,
    timers_are_leased_and_come_back_when_the_lease_runs_out,
    two_claimers_never_get_the_same_timer,
    commit_consumes_its_timer_all_or_nothing,
    commit_refuses_a_timer_another_owner_took,
    a_fired_batch_skips_only_the_timers_that_lost,
    a_request_key_opens_one_case_even_when_raced,
    racing_commits_on_one_case_give_one_winner,
    release_timers_hands_back_only_the_owners_timers,
    pages_are_leased_and_a_lost_lease_is_not_recorded,
    two_dispatchers_never_get_the_same_page,
    failed_pages_fall_back_and_retries_wait,
    inbox_receives_settles_and_files_once,
    tokens_and_sessions,
    tokens_expire_are_listed_and_revoked_with_their_sessions,
    audit_is_appended_read_by_window_and_counted_per_client,
    overrides_settings_and_opt_outs,
    report_data_and_dashboard_lists,
    migrate_twice_and_from_three_instances_at_once,
    // --- mail verification (issue 13) ---
    an_unverified_case_keeps_its_mark_and_an_old_setting_can_be_moved_out,
    // --- Twilio replays and new-case limits (issue 13) ---
    a_twilio_key_is_claimed_once_even_by_racing_instances,
    mail_openings_are_counted_by_sender_and_domain,
    held_mail_is_listed_and_counted,
    // --- issue 16: recovery ---
    a_lone_instance_takes_over_every_lease_left_at_once,
    // --- issue 14: replies ---
    a_reply_keeps_its_author_and_answers_the_customers_own_mail,
    attachments_are_listed_with_their_filing_and_only_on_their_case,
    // --- issue 15: urgency ---
    a_held_case_keeps_its_urgency_hold_and_hold_timer,
    // --- issue 15: finding cases ---
    find_cases_filters_pages_by_cursor_and_limits_an_engineer_to_their_cases,
    // --- issue 15: calendar feed versions ---
    a_feed_shift_keeps_its_version_until_its_fingerprint_changes,
    // --- rehearsing rules (issue 18) ---
    the_next_page_due_is_a_queued_one_a_retry_or_a_lapsed_lease,
);

const T0: &str = "2026-11-24T10:00:00.123Z";

fn t0() -> DateTime<Utc> {
    at(T0)
}

fn case_at(opened: DateTime<Utc>) -> Case {
    Case {
        number: CaseNumber(0),
        subject: "Site down".into(),
        body: "All 500s".into(),
        customer: Some("Acme".into()),
        requester: "ops@acme.com".into(),
        priority: "P1".parse().unwrap(),
        plan: "gold".into(),
        policy: "urgent".into(),
        status: Status::Open,
        assignee: None,
        opened_at: opened,
        acked_at: None,
        resolved_at: None,
        deadlines: Deadlines {
            respond: Some(opened + TimeDelta::milliseconds(1_800_001)),
            update: None,
            resolve: Some(opened + TimeDelta::hours(4)),
        },
        respond_from: opened,
        update_from: None,
        pauses: vec![],
        warned: BTreeSet::new(),
        snoozed_until: None,
        escalation: Escalation { at: Position { round: 0, step: 0 }, running: true },
        unverified: false,
        respond_met_at: None,
        update_met_at: None,
        urgency: Urgency::High,
        held_until: None,
        version: 0,
    }
}

fn page_to(person: &str, channel: ChannelKind, kind: PageKind, position: Option<Position>) -> NewPage {
    NewPage {
        person: Some(person.parse().unwrap()),
        address: format!("{person}@example.com"),
        channel,
        kind,
        position,
        detail: String::new(),
        author: None,
    }
}

/// Opens a case at `opened` with a step timer due `step_in` later, one
/// event and one page to ana.
async fn open_case(s: &dyn Store, opened: DateTime<Utc>, step_in: TimeDelta) -> Case {
    let c = case_at(opened);
    let mut tr = Transition::new(&c, opened);
    tr.events.push(NewEvent {
        at: opened,
        kind: EventKind::Opened,
        actor: "ops@acme.com".into(),
        channel: Some(Via::Api),
        text: "Site down".into(),
    });
    tr.pages.push(page_to("ana", ChannelKind::Sms, PageKind::Page, Some(Position { round: 0, step: 0 })));
    tr.set_timer(TimerKind::Step, opened + step_in, Position { round: 0, step: 0 });
    tr.set_timer(
        TimerKind::Deadline(SlaClock::Respond),
        opened + TimeDelta::minutes(30),
        Position { round: 0, step: 0 },
    );
    s.create_case(&tr).await.unwrap()
}

fn acked(c: &Case, now: DateTime<Utc>) -> Transition {
    let mut next = c.clone();
    next.status = Status::Acknowledged;
    next.assignee = Some("ana".parse().unwrap());
    next.acked_at = Some(now);
    next.escalation.running = false;
    let mut tr = Transition::new(&next, now);
    tr.events.push(NewEvent {
        at: now,
        kind: EventKind::Acknowledged,
        actor: "ana".into(),
        channel: Some(Via::Sms),
        text: String::new(),
    });
    tr.cancel_timer(TimerKind::Step);
    tr
}

async fn case_round_trips_to_the_millisecond(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    assert_eq!(c.number, CaseNumber(1001), "numbers start at 1001 on every backend");
    assert_eq!(c.version, 1);
    let read = s.case(c.number).await.unwrap().unwrap();
    assert_eq!(read, c, "every field, instants to the millisecond");
    let second = open_case(s, t0() + TimeDelta::milliseconds(1), TimeDelta::minutes(5)).await;
    assert_eq!(second.number, CaseNumber(1002));
    let timeline = s.timeline(c.number).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].at, t0());
    assert_eq!(timeline[0].channel.as_deref(), Some("api"));
    let pages = s.pages_of(c.number).await.unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].status, PageStatus::Queued);
    assert_eq!(pages[0].position, Some(Position { round: 0, step: 0 }));
    assert_eq!(pages[0].created_at, t0());
    assert_eq!(
        s.last_step_paging(c.number, &"ana".parse().unwrap()).await.unwrap(),
        Some(Position { round: 0, step: 0 })
    );
    assert_eq!(s.cases(None, 10).await.unwrap().iter().map(|c| c.number.0).collect::<Vec<_>>(), [1002, 1001]);
    assert_eq!(s.cases(Some(Status::Acknowledged), 10).await.unwrap(), vec![]);
    assert_eq!(s.cases_paging(&"ana".parse().unwrap()).await.unwrap(), vec![c.number, second.number]);
    assert_eq!(s.next_timer_at().await.unwrap(), Some(t0() + TimeDelta::minutes(5)));
    assert!(s.case(CaseNumber(4242)).await.unwrap().is_none());
    s.ping().await.unwrap();
}

async fn commit_refuses_a_stale_version(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let now = t0() + TimeDelta::seconds(61);
    let done = s.commit(&acked(&c, now), 1, None).await.unwrap();
    assert_eq!(done.version, 2);
    let stored = s.case(c.number).await.unwrap().unwrap();
    assert_eq!(stored, done);
    assert_eq!(s.cases_assigned(&"ana".parse().unwrap()).await.unwrap(), vec![stored.clone()]);
    // A second change decided on version 1 lost the race.
    let mut late = c.clone();
    late.status = Status::Resolved;
    let mut tr = Transition::new(&late, now);
    tr.events.push(NewEvent {
        at: now,
        kind: EventKind::Resolved,
        actor: "ben".into(),
        channel: None,
        text: "x".into(),
    });
    assert!(matches!(s.commit(&tr, 1, None).await, Err(StoreError::Conflict)));
    assert_eq!(s.case(c.number).await.unwrap().unwrap(), stored, "nothing of the stale change applied");
    assert_eq!(s.timeline(c.number).await.unwrap().len(), 2);
    // The step timer was cancelled by the acknowledgement; the deadline stays.
    assert_eq!(s.next_timer_at().await.unwrap(), Some(t0() + TimeDelta::minutes(30)));
    // A case that does not exist is a conflict too.
    let mut ghost = c.clone();
    ghost.number = CaseNumber(9999);
    assert!(matches!(s.commit(&Transition::new(&ghost, now), 1, None).await, Err(StoreError::Conflict)));
}

async fn timers_are_leased_and_come_back_when_the_lease_runs_out(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let due = t0() + TimeDelta::minutes(5);
    let lease = TimeDelta::seconds(30);
    assert!(s.claim_timers(due - TimeDelta::milliseconds(1), "a", lease, 10).await.unwrap().is_empty());
    let got = s.claim_timers(due, "a", lease, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].case, got[0].kind, got[0].due), (c.number, TimerKind::Step, due));
    // Held: nobody else gets it, and it is next claimable when its lease ends.
    assert!(s.claim_timers(due + TimeDelta::seconds(29), "b", lease, 10).await.unwrap().is_empty());
    assert_eq!(s.next_timer_at().await.unwrap(), Some(due + lease));
    let counts = s.counts(due).await.unwrap();
    assert_eq!((counts.timers_pending, counts.timers_due), (2, 1));
    // "a" crashed: its lease runs out and "b" takes the timer.
    let again = s.claim_timers(due + lease, "b", lease, 10).await.unwrap();
    assert_eq!(again.iter().map(|t| t.id).collect::<Vec<_>>(), vec![got[0].id]);
    // Oldest first, and at most `limit`.
    let later = t0() + TimeDelta::hours(1);
    for i in 0..3 {
        open_case(s, t0() + TimeDelta::seconds(i), TimeDelta::minutes(10) - TimeDelta::seconds(2 * i)).await;
    }
    let first = s.claim_timers(later, "c", lease, 2).await.unwrap();
    let dues: Vec<_> = first.iter().map(|t| t.due).collect();
    assert_eq!(dues, vec![due, t0() + TimeDelta::minutes(10) - TimeDelta::seconds(2)], "b's lease ran out too");
    s.drop_timer(first[0].id, "someone else").await.unwrap();
    s.drop_timer(first[0].id, "c").await.unwrap();
    let counts = s.counts(later).await.unwrap();
    assert_eq!(counts.timers_pending, 7);
}

async fn two_claimers_never_get_the_same_timer(b: &Backend) {
    let s = &*b.store;
    for i in 0..60 {
        open_case(s, t0() + TimeDelta::milliseconds(i), TimeDelta::minutes(5)).await;
    }
    let now = t0() + TimeDelta::hours(1);
    // Four workers on their own connections, as four instances would be.
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = b.reopen().await;
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_timers(now, &format!("w{w}"), TimeDelta::minutes(1), 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.iter().map(|t| t.id));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(all.len(), 120, "two timers per case, each claimed once");
    assert_eq!(distinct.len(), 120, "no timer went to two claimers");
}

async fn commit_consumes_its_timer_all_or_nothing(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let due = t0() + TimeDelta::minutes(5);
    let timer = s.claim_timers(due, "a", TimeDelta::seconds(30), 10).await.unwrap()[0];
    // The firing decided on a stale version: nothing applies, the timer stays held.
    let mut note = Transition::new(&c, due);
    note.events.push(NewEvent { at: due, kind: EventKind::Note, actor: "ana".into(), channel: None, text: "x".into() });
    s.commit(&note, 1, None).await.unwrap();
    let mut step = c.clone();
    step.escalation.at = Position { round: 0, step: 1 };
    let mut tr = Transition::new(&step, due);
    tr.set_timer(TimerKind::Step, due + TimeDelta::minutes(10), Position { round: 0, step: 1 });
    assert!(matches!(s.commit(&tr, 1, Some((timer.id, "a"))).await, Err(StoreError::Conflict)));
    assert_eq!(s.counts(due).await.unwrap().timers_pending, 2);
    assert!(s.claim_timers(due, "b", TimeDelta::seconds(30), 10).await.unwrap().is_empty(), "still held by a");
    assert_eq!(s.timeline(c.number).await.unwrap().len(), 2, "the note only");
    // A firing whose effects fail half-way (its mail was filed meanwhile)
    // leaves the case, its timeline and the timer as they were.
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let timer = s.claim_timers(due, "a", TimeDelta::seconds(30), 10).await.unwrap();
    let timer = timer.iter().find(|t| t.case == c.number).unwrap();
    let inbox = s.receive_mail(b"raw", &Envelope { from: None, to: vec![] }, "smtp", due).await.unwrap();
    assert!(s.settle_mail(inbox, InboxStatus::Duplicate, "", due).await.unwrap());
    let mut tr = acked(&c, due);
    tr.filing = Some(Filing {
        inbox_id: inbox,
        message_id: None,
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: Vec::new(),
    });
    tr.set_timer(TimerKind::Step, due + TimeDelta::minutes(10), Position { round: 0, step: 1 });
    assert!(matches!(s.commit(&tr, 1, Some((timer.id, "a"))).await, Err(StoreError::AlreadyFiled)));
    assert_eq!(s.case(c.number).await.unwrap().unwrap(), c);
    assert_eq!(s.timeline(c.number).await.unwrap().len(), 1);
    // The same firing, done right, deletes the timer with its effects.
    let mut tr = acked(&c, due);
    tr.pages.push(page_to("dana", ChannelKind::Email, PageKind::Page, Some(Position { round: 0, step: 1 })));
    let done = s.commit(&tr, 1, Some((timer.id, "a"))).await.unwrap();
    assert_eq!(done.version, 2);
    assert_eq!(s.pages_of(c.number).await.unwrap().len(), 2);
    assert!(matches!(s.commit(&acked(&done, due), 2, Some((timer.id, "a"))).await, Err(StoreError::LostLease)));
}

async fn commit_refuses_a_timer_another_owner_took(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let due = t0() + TimeDelta::minutes(5);
    let lease = TimeDelta::seconds(30);
    let timer = s.claim_timers(due, "a", lease, 1).await.unwrap()[0];
    let taken = s.claim_timers(due + lease, "b", TimeDelta::minutes(10), 1).await.unwrap();
    assert_eq!(taken[0].id, timer.id);
    // "a" wakes up after its lease ran out and "b" took over: refused whole.
    assert!(matches!(s.commit(&acked(&c, due), 1, Some((timer.id, "a"))).await, Err(StoreError::LostLease)));
    assert_eq!(s.case(c.number).await.unwrap().unwrap().version, 1);
    assert_eq!(s.timeline(c.number).await.unwrap().len(), 1);
    // A lease that ran out while nobody took it is still good for its owner.
    let c2 = open_case(s, t0(), TimeDelta::minutes(6)).await;
    let t2 = s.claim_timers(due + TimeDelta::minutes(1), "a", lease, 1).await.unwrap()[0];
    assert_eq!(t2.case, c2.number);
    s.commit(&acked(&c2, due + TimeDelta::hours(1)), 1, Some((t2.id, "a"))).await.unwrap();
    // "b" fires its timer.
    s.commit(&acked(&c, due + lease), 1, Some((timer.id, "b"))).await.unwrap();
}

async fn a_fired_batch_skips_only_the_timers_that_lost(b: &Backend) {
    let s = &*b.store;
    let (c1, c2, c3) = (
        open_case(s, t0(), TimeDelta::minutes(5)).await,
        open_case(s, t0(), TimeDelta::minutes(5)).await,
        open_case(s, t0(), TimeDelta::minutes(5)).await,
    );
    let due = t0() + TimeDelta::minutes(5);
    let lease = TimeDelta::seconds(30);
    let held = s.claim_timers(due, "a", lease, 10).await.unwrap();
    assert_eq!(held.iter().map(|t| t.case).collect::<Vec<_>>(), [c1.number, c2.number, c3.number]);
    // c1's timer went to "b" when a's lease ran out; c2 changed meanwhile.
    assert_eq!(s.claim_timers(due + lease, "b", lease, 1).await.unwrap()[0].id, held[0].id);
    let mut note = Transition::new(&c2, due);
    note.events.push(NewEvent { at: due, kind: EventKind::Note, actor: "ana".into(), channel: None, text: "x".into() });
    s.commit(&note, 1, None).await.unwrap();
    let fire = |c: &Case| {
        let mut tr = acked(c, due + lease);
        tr.pages.push(page_to("dana", ChannelKind::Email, PageKind::Page, Some(Position { round: 0, step: 1 })));
        (tr, 1, 0)
    };
    let mut batch: Vec<_> = [&c1, &c2, &c3].into_iter().map(fire).collect();
    for (item, timer) in batch.iter_mut().zip(&held) {
        item.2 = timer.id;
    }
    // An error other than a lost race fails the whole batch: nothing applies.
    let inbox = s.receive_mail(b"raw", &Envelope { from: None, to: vec![] }, "smtp", due).await.unwrap();
    assert!(s.settle_mail(inbox, InboxStatus::Duplicate, "", due).await.unwrap());
    let mut filed = batch.clone();
    filed[2].0.filing = Some(Filing {
        inbox_id: inbox,
        message_id: None,
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: Vec::new(),
    });
    assert!(matches!(s.commit_fired(&filed, "a").await, Err(StoreError::AlreadyFiled)));
    assert_eq!(s.case(c3.number).await.unwrap().unwrap(), c3);
    // Done right: c3 fires; c1 and c2 are answered alone and untouched.
    let answers = s.commit_fired(&batch, "a").await.unwrap();
    assert!(matches!(answers[0], Err(StoreError::LostLease)), "{:?}", answers[0]);
    assert!(matches!(answers[1], Err(StoreError::Conflict)), "{:?}", answers[1]);
    let fired = answers[2].as_ref().unwrap();
    assert_eq!((fired.number, fired.version, fired.status), (c3.number, 2, Status::Acknowledged));
    assert_eq!(s.case(c3.number).await.unwrap().unwrap(), *fired);
    assert_eq!(s.pages_of(c3.number).await.unwrap().len(), 2);
    assert_eq!(s.case(c1.number).await.unwrap().unwrap(), c1);
    assert_eq!(s.case(c2.number).await.unwrap().unwrap().version, 2, "the note only");
    assert_eq!(s.pages_of(c1.number).await.unwrap().len() + s.pages_of(c2.number).await.unwrap().len(), 2);
    // c3's step timer is gone; c2's is still a's, c1's is b's.
    let counts = s.counts(due + lease).await.unwrap();
    assert_eq!(counts.timers_pending, 5, "three deadlines and two step timers");
    s.commit(&acked(&c1, due + lease), 1, Some((held[0].id, "b"))).await.unwrap();
    let c2 = s.case(c2.number).await.unwrap().unwrap();
    s.commit(&acked(&c2, due + lease), 2, Some((held[1].id, "a"))).await.unwrap();
}

async fn a_request_key_opens_one_case_even_when_raced(b: &Backend) {
    let s = &*b.store;
    let keyed = |scope: &str, key: &str| {
        let mut tr = Transition::new(&case_at(t0()), t0());
        tr.request = Some(RequestKey { scope: scope.into(), key: key.into(), fingerprint: format!("fp-{key}") });
        tr
    };
    let first = s.create_case(&keyed("monitoring", "k1")).await.unwrap();
    match s.create_case(&keyed("monitoring", "k1")).await {
        Err(StoreError::Repeated { case, fingerprint }) => {
            assert_eq!((case, fingerprint.as_str()), (first.number, "fp-k1"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.cases(None, 10).await.unwrap().len(), 1, "the repeat opened nothing");
    // Keys are per scope (token), and a case without a key is unaffected.
    let other = s.create_case(&keyed("web-form", "k1")).await.unwrap();
    assert_ne!(other.number, first.number);
    s.create_case(&Transition::new(&case_at(t0()), t0())).await.unwrap();
    // Four instances racing with one new key: one case.
    let mut racers = Vec::new();
    for _ in 0..4 {
        let store = b.reopen().await;
        let tr = keyed("monitoring", "k2");
        racers.push(tokio::spawn(async move { store.create_case(&tr).await }));
    }
    let (mut made, mut repeated) = (Vec::new(), Vec::new());
    for r in racers {
        match r.await.unwrap() {
            Ok(c) => made.push(c.number),
            Err(StoreError::Repeated { case, .. }) => repeated.push(case),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(made.len(), 1, "{made:?} {repeated:?}");
    assert!(repeated.iter().all(|c| *c == made[0]), "{made:?} {repeated:?}");
    assert_eq!(s.cases(None, 10).await.unwrap().len(), 4);
}

async fn release_timers_hands_back_only_the_owners_timers(b: &Backend) {
    let s = &*b.store;
    for i in 0..2 {
        open_case(s, t0() + TimeDelta::seconds(i), TimeDelta::minutes(5)).await;
    }
    let now = t0() + TimeDelta::hours(1);
    let lease = TimeDelta::minutes(5);
    let a = s.claim_timers(now, "a", lease, 3).await.unwrap();
    let bee = s.claim_timers(now, "b", lease, 3).await.unwrap();
    assert_eq!((a.len(), bee.len()), (3, 1));
    assert_eq!(s.release_timers("a").await.unwrap(), 3);
    assert_eq!(s.release_timers("a").await.unwrap(), 0);
    assert_eq!(s.next_timer_at().await.unwrap(), Some(a[0].due), "released timers are due again at once");
    let c = s.claim_timers(now, "c", lease, 10).await.unwrap();
    assert_eq!(
        c.iter().map(|t| t.id).collect::<BTreeSet<_>>(),
        a.iter().map(|t| t.id).collect::<BTreeSet<_>>(),
        "another instance takes them without waiting for the lease"
    );
}

async fn pages_are_leased_and_a_lost_lease_is_not_recorded(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let now = t0() + TimeDelta::seconds(1);
    let lease = TimeDelta::seconds(30);
    let got = s.claim_pages(now, "a", lease, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!((p.status, p.attempts, p.in_doubt, p.case), (PageStatus::Sending, 1, false, Some(c.number)));
    assert!(s.claim_pages(now + TimeDelta::seconds(29), "b", lease, 10).await.unwrap().is_empty());
    // "a" died mid-send: after the lease, "b" takes it, in doubt.
    let again = s.claim_pages(now + lease, "b", lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts, again[0].in_doubt), (p.id, 2, true));
    assert_eq!(again[0].prev_claimed_at, Some(now));
    let sent = Delivery::Sent { provider_id: Some("SM1".into()), message_id: Some("<m1@x>".into()) };
    assert_eq!(s.finish_pages("a", &[(p.id, sent.clone())], now + lease).await.unwrap(), 0, "a lost its lease");
    assert_eq!(s.finish_pages("b", &[(p.id, sent)], now + lease).await.unwrap(), 1);
    let page = s.page(p.id).await.unwrap().unwrap();
    assert_eq!((page.status, page.provider_id.as_deref()), (PageStatus::Sent, Some("SM1")));
    assert_eq!(s.pages_by_provider_id("SM1").await.unwrap().len(), 1);
    assert_eq!(s.case_by_message_id(&["<nope>".into(), "<m1@x>".into()]).await.unwrap(), Some(c.number));
    assert!(!s.received_before("<m1@x>").await.unwrap(), "sent, not received");
    assert_eq!(s.last_sent(&"ana".parse().unwrap(), ChannelKind::Sms).await.unwrap(), Some(now + lease));
    // Delivery reports move forwards only.
    assert!(s.report_delivery(p.id, PageStatus::Delivered, None, None, now + lease).await.unwrap());
    assert!(!s.report_delivery(p.id, PageStatus::Undelivered, Some("late"), None, now + lease).await.unwrap());
    assert!(s.claim_pages(now + TimeDelta::hours(1), "c", lease, 10).await.unwrap().is_empty());
}

async fn two_dispatchers_never_get_the_same_page(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let pages: Vec<_> = (0..90).map(|_| page_to("ben", ChannelKind::Email, PageKind::Reminder, None)).collect();
    s.queue_pages(Some(c.number), &pages, t0()).await.unwrap();
    let now = t0() + TimeDelta::seconds(1);
    let mut workers = Vec::new();
    for w in 0..3 {
        let store = b.reopen().await;
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_pages(now, &format!("d{w}"), TimeDelta::minutes(1), 4).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.iter().map(|p| p.id));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    assert_eq!(all.len(), 91);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 91, "no page went to two dispatchers");
}

async fn failed_pages_fall_back_and_retries_wait(b: &Backend) {
    let s = &*b.store;
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    s.queue_pages(None, &[page_to("mia", ChannelKind::Email, PageKind::Notice, None)], t0()).await.unwrap();
    let now = t0() + TimeDelta::seconds(1);
    let lease = TimeDelta::seconds(30);
    let got = s.claim_pages(now, "a", lease, 10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].case, None, "a notice belongs to no case");
    let fallback = page_to("ana", ChannelKind::Email, PageKind::Page, Some(Position { round: 0, step: 0 }));
    let retry_at = now + TimeDelta::seconds(10);
    let outcomes = vec![
        (got[0].id, Delivery::Failed { error: "no such phone".into(), fallback: Some(fallback) }),
        (got[1].id, Delivery::Retry { at: retry_at, error: "busy".into() }),
    ];
    assert_eq!(s.finish_pages("a", &outcomes, now).await.unwrap(), 2);
    let pages = s.pages_of(c.number).await.unwrap();
    assert_eq!(
        pages.iter().map(|p| (p.channel, p.status)).collect::<Vec<_>>(),
        vec![(ChannelKind::Sms, PageStatus::Failed), (ChannelKind::Email, PageStatus::Queued)]
    );
    let timeline = s.timeline(c.number).await.unwrap();
    assert_eq!(timeline.last().unwrap().kind, "page_failed");
    assert!(timeline.last().unwrap().text.contains("falling back to email"), "{:?}", timeline.last());
    // The retry waits for its time; the fallback goes at once.
    let next = s.claim_pages(now, "a", lease, 10).await.unwrap();
    assert_eq!(next.iter().map(|p| p.id).collect::<Vec<_>>(), vec![pages[1].id]);
    let deferred = vec![(pages[1].id, Delivery::Deferred { at: retry_at })];
    assert_eq!(s.finish_pages("a", &deferred, now).await.unwrap(), 1);
    assert_eq!(s.page(pages[1].id).await.unwrap().unwrap().attempts, 0, "a deferral is no attempt");
    let later = s.claim_pages(retry_at, "a", lease, 10).await.unwrap();
    assert_eq!(later.len(), 2);
    let notice = later.iter().find(|p| p.case.is_none()).unwrap();
    assert_eq!(notice.error.as_deref(), Some("busy"));
    assert_eq!(notice.attempts, 2);
    let troubled = s.troubled_pages(t0(), t0() + TimeDelta::days(1), 10).await.unwrap();
    assert_eq!(troubled.len(), 3, "one failed, two still sending");
    assert_eq!(troubled[0].id, later.iter().map(|p| p.id).max().unwrap(), "newest first");
    let counts = s.counts(retry_at).await.unwrap();
    assert!(counts.pages.contains(&("sms".into(), "failed".into(), 1)), "{:?}", counts.pages);
}

async fn inbox_receives_settles_and_files_once(b: &Backend) {
    let s = &*b.store;
    let env = Envelope { from: Some(String::new()), to: vec!["help@support.example.com".into()] };
    let raw = b"From: ops@acme.com\r\n\r\nbody \xff bytes";
    let one = s.receive_mail(raw, &env, "smtp", t0()).await.unwrap();
    let two = s.receive_mail(raw, &env, "pipe", t0()).await.unwrap();
    let three = s.receive_mail(raw, &env, "webhook", t0()).await.unwrap();
    assert_eq!(s.pending_mail(10).await.unwrap(), vec![one, two, three]);
    let rec = s.inbox(one).await.unwrap().unwrap();
    assert_eq!((rec.raw.as_slice(), &rec.envelope, rec.received_at), (&raw[..], &env, t0()));
    assert_eq!((rec.status.as_str(), rec.source.as_str(), rec.case), ("pending", "smtp", None));
    assert!(s.settle_mail(two, InboxStatus::Automatic, "auto-reply", t0()).await.unwrap());
    assert!(!s.settle_mail(two, InboxStatus::Unusable, "again", t0()).await.unwrap(), "only a pending row settles");
    assert_eq!(s.inbox(two).await.unwrap().unwrap().note, "auto-reply");
    // Filing with the case's creation.
    let c = case_at(t0());
    let mut tr = Transition::new(&c, t0());
    tr.filing = Some(Filing {
        inbox_id: one,
        message_id: Some("<in1@acme.com>".into()),
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: Vec::new(),
    });
    let c = s.create_case(&tr).await.unwrap();
    let rec = s.inbox(one).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.case), ("filed", Some(c.number)));
    assert!(s.received_before("<in1@acme.com>").await.unwrap());
    assert_eq!(s.case_by_message_id(&["<in1@acme.com>".into()]).await.unwrap(), Some(c.number));
    // A second filing of the same row is refused whole.
    let mut tr = Transition::new(&c, t0());
    tr.filing = Some(Filing {
        inbox_id: one,
        message_id: None,
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: Vec::new(),
    });
    assert!(matches!(s.commit(&tr, 1, None).await, Err(StoreError::AlreadyFiled)));
    // As is another message with a Message-ID seen before.
    let mut tr = Transition::new(&c, t0());
    tr.filing = Some(Filing {
        inbox_id: three,
        message_id: Some("<in1@acme.com>".into()),
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: Vec::new(),
    });
    assert!(matches!(s.commit(&tr, 1, None).await, Err(StoreError::Duplicate(_))));
    assert_eq!(s.inbox(three).await.unwrap().unwrap().status, InboxStatus::Pending, "rolled back");
    assert_eq!(s.case(c.number).await.unwrap().unwrap().version, 1);
    assert_eq!(s.pending_mail(10).await.unwrap(), vec![three]);
    // An auto-reply joining the case keeps its own status and why.
    let four = s.receive_mail(raw, &env, "smtp", t0()).await.unwrap();
    let mut tr = Transition::new(&c, t0());
    tr.filing = Some(Filing {
        inbox_id: four,
        message_id: None,
        status: InboxStatus::Automatic,
        note: "auto-replied".into(),
        attachments: Vec::new(),
    });
    s.commit(&tr, 1, None).await.unwrap();
    let rec = s.inbox(four).await.unwrap().unwrap();
    assert_eq!((rec.status.as_str(), rec.note.as_str(), rec.case), ("automatic", "auto-replied", Some(c.number)));
}

async fn tokens_and_sessions(b: &Backend) {
    let s = &*b.store;
    let info = TokenInfo::new("ana-phone", TokenRole::Engineer, Some("ana".parse().unwrap()));
    s.insert_token(&info, "h1", t0()).await.unwrap();
    let stored = TokenRecord { info: info.clone(), created_at: t0(), revoked_at: None };
    assert_eq!(s.token("h1").await.unwrap(), Some(stored.clone()));
    assert_eq!(s.token("h2").await.unwrap(), None);
    assert!(matches!(s.insert_token(&info, "h2", t0()).await, Err(StoreError::Duplicate(_))));
    let admin = TokenInfo::new("ops", TokenRole::Admin, None);
    s.insert_token(&admin, "h3", t0()).await.unwrap();
    let until = t0() + TimeDelta::hours(8);
    s.create_session("s1", "h1", "csrf1", until, t0()).await.unwrap();
    s.create_session("s2", "h3", "csrf2", t0() + TimeDelta::minutes(1), t0()).await.unwrap();
    s.create_session("s3", "gone", "csrf3", until, t0()).await.unwrap();
    let got = s.session("s1", t0()).await.unwrap().unwrap();
    assert_eq!((got.token, got.csrf.as_str(), got.expires_at), (stored, "csrf1", until));
    assert!(s.session("s3", t0()).await.unwrap().is_none(), "its token is gone");
    let later = t0() + TimeDelta::minutes(1);
    assert!(s.session("s2", later).await.unwrap().is_none(), "expired");
    assert!(s.session("s2", later - TimeDelta::milliseconds(1)).await.unwrap().is_some());
    s.delete_session("s1", later).await.unwrap();
    assert!(s.session("s1", t0()).await.unwrap().is_none(), "signed out");
    assert!(s.session("s2", t0()).await.unwrap().is_none(), "expired sessions are forgotten");
}

async fn tokens_expire_are_listed_and_revoked_with_their_sessions(b: &Backend) {
    let s = &*b.store;
    let expires = t0() + TimeDelta::days(90);
    let feed = TokenInfo {
        schedule: Some("primary".into()),
        expires_at: Some(expires),
        ..TokenInfo::new("primary-cal", TokenRole::Feed, None)
    };
    s.insert_token(&feed, "hf", t0()).await.unwrap();
    let ana = TokenInfo::new("ana-phone", TokenRole::Engineer, Some("ana".parse().unwrap()));
    s.insert_token(&ana, "ha", t0() + TimeDelta::seconds(1)).await.unwrap();
    let got = s.token("hf").await.unwrap().unwrap();
    assert_eq!((got.info, got.created_at, got.revoked_at), (feed.clone(), t0(), None), "expiry and scope kept");
    let names: Vec<_> = s.tokens().await.unwrap().into_iter().map(|t| t.info.name).collect();
    assert_eq!(names, ["primary-cal", "ana-phone"], "oldest first");

    s.create_session("sa", "ha", "c", t0() + TimeDelta::hours(8), t0()).await.unwrap();
    s.create_session("sf", "hf", "c", t0() + TimeDelta::hours(8), t0()).await.unwrap();
    let revoked_at = t0() + TimeDelta::minutes(5);
    assert!(s.revoke_token("ana-phone", revoked_at).await.unwrap());
    assert!(s.session("sa", t0()).await.unwrap().is_none(), "its sessions ended");
    assert!(s.session("sf", t0()).await.unwrap().is_some(), "other tokens' sessions stay");
    assert_eq!(s.token("ha").await.unwrap().unwrap().revoked_at, Some(revoked_at));
    assert!(s.revoke_token("ana-phone", revoked_at + TimeDelta::hours(1)).await.unwrap());
    assert_eq!(s.token("ha").await.unwrap().unwrap().revoked_at, Some(revoked_at), "the first revocation stands");
    assert!(!s.revoke_token("zoe-phone", revoked_at).await.unwrap(), "no such token");
}

async fn audit_is_appended_read_by_window_and_counted_per_client(b: &Backend) {
    let s = &*b.store;
    let entry = |at: DateTime<Utc>, action: AuditAction, client: Option<&str>| AuditEntry {
        at,
        actor: "cli".into(),
        action,
        subject: "ana-phone".into(),
        detail: "role engineer".into(),
        client: client.map(str::to_owned),
    };
    let first = entry(t0(), AuditAction::TokenCreated, None);
    s.append_audit(&first).await.unwrap();
    for i in 0..3 {
        let at = t0() + TimeDelta::minutes(i);
        s.append_audit(&entry(at, AuditAction::SignInFailed, Some("192.0.2.7"))).await.unwrap();
    }
    s.append_audit(&entry(t0(), AuditAction::SignInFailed, Some("192.0.2.8"))).await.unwrap();
    s.append_audit(&entry(t0() + TimeDelta::minutes(1), AuditAction::SignIn, Some("192.0.2.7"))).await.unwrap();

    let all = s.audit(t0(), t0() + TimeDelta::hours(1), 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0], first, "round trips to the millisecond");
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
    assert_eq!(
        s.audit(t0() + TimeDelta::minutes(1), t0() + TimeDelta::minutes(2), 100).await.unwrap().len(),
        3,
        "both ends included"
    );
    assert_eq!(s.audit(t0(), t0() + TimeDelta::hours(1), 2).await.unwrap().len(), 2, "limited");

    let times = s.audit_times(AuditAction::SignInFailed, "192.0.2.7", t0()).await.unwrap();
    assert_eq!(times, [t0() + TimeDelta::minutes(1), t0() + TimeDelta::minutes(2)], "after `since`, this client only");
    let times = s.audit_times(AuditAction::SignInFailed, "192.0.2.7", t0() - TimeDelta::seconds(1)).await.unwrap();
    assert_eq!(times.len(), 3);
}

async fn overrides_settings_and_opt_outs(b: &Backend) {
    let s = &*b.store;
    let o = OverrideRecord {
        id: 0,
        schedule: "primary".into(),
        person: "dana".parse().unwrap(),
        start: t0(),
        end: t0() + TimeDelta::hours(2),
        reason: "swap".into(),
        created_by: "mia".into(),
        created_at: t0(),
    };
    let first = s.insert_override(&o).await.unwrap();
    let second = s.insert_override(&OverrideRecord { end: t0() + TimeDelta::hours(1), ..o.clone() }).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(s.overrides(t0()).await.unwrap(), vec![first.clone(), second.clone()]);
    assert_eq!(s.overrides(t0() + TimeDelta::hours(1)).await.unwrap(), vec![first.clone()]);
    assert!(s.delete_override(first.id).await.unwrap());
    assert!(!s.delete_override(first.id).await.unwrap());
    assert_eq!(s.setting("reply_key", "k1").await.unwrap(), "k1");
    assert_eq!(s.setting("reply_key", "k2").await.unwrap(), "k1", "the first value stays");
    let ana = "ana".parse().unwrap();
    assert!(s.set_sms_opt_out(&ana, true, t0()).await.unwrap());
    assert!(!s.set_sms_opt_out(&ana, true, t0()).await.unwrap());
    assert_eq!(s.sms_opt_outs().await.unwrap().into_iter().collect::<Vec<_>>(), vec![ana.clone()]);
    assert!(s.set_sms_opt_out(&ana, false, t0()).await.unwrap());
    assert_eq!(s.phone_errors(&ana, false, t0()).await.unwrap(), 1);
    assert_eq!(s.phone_errors(&ana, false, t0()).await.unwrap(), 2);
    assert_eq!(s.phone_errors(&ana, true, t0()).await.unwrap(), 0);
    assert_eq!(s.phone_errors(&ana, false, t0()).await.unwrap(), 1);
    let digest = page_to("mia", ChannelKind::Email, PageKind::Digest, None);
    assert!(s.queue_digest(&"mia".parse().unwrap(), "2026-11-24", &digest, t0()).await.unwrap());
    assert!(!s.queue_digest(&"mia".parse().unwrap(), "2026-11-24", &digest, t0()).await.unwrap());
}

async fn report_data_and_dashboard_lists(b: &Backend) {
    let s = &*b.store;
    let early = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let late = open_case(s, t0() + TimeDelta::hours(2), TimeDelta::minutes(5)).await;
    let mut breach = acked(&early, t0() + TimeDelta::minutes(40));
    breach.events.push(NewEvent {
        at: t0() + TimeDelta::minutes(40),
        kind: EventKind::Breach,
        actor: "tocsin".into(),
        channel: Some(Via::Scheduler),
        text: "respond deadline passed".into(),
    });
    breach.case.deadlines.update = Some(t0() + TimeDelta::hours(5));
    let early = s.commit(&breach, 1, None).await.unwrap();
    let pages = s.claim_pages(t0() + TimeDelta::hours(3), "a", TimeDelta::minutes(1), 10).await.unwrap();
    let outcomes: Vec<_> =
        pages.iter().map(|p| (p.id, Delivery::Sent { provider_id: None, message_id: None })).collect();
    s.finish_pages("a", &outcomes, t0() + TimeDelta::hours(3)).await.unwrap();
    let data = s.report_data(t0(), t0() + TimeDelta::hours(1)).await.unwrap();
    assert_eq!(data.cases.len(), 1);
    let rc = &data.cases[0];
    assert_eq!((rc.number, rc.opened_at, rc.acked_at), (early.number, t0(), early.acked_at));
    assert_eq!(rc.assignee, Some("ana".parse().unwrap()));
    assert_eq!(data.breaches.len(), 1);
    assert_eq!(data.breaches[0].1.text, "respond deadline passed");
    assert_eq!(data.pages.len(), 1);
    assert_eq!((data.pages[0].at, data.pages[0].channel), (t0(), ChannelKind::Sms));
    assert_eq!(s.report_data(t0() + TimeDelta::hours(2), t0() + TimeDelta::hours(3)).await.unwrap().cases.len(), 1);
    // Respond due at +30m for the late case beats the early one's resolve/update.
    let active = s.active_cases(10).await.unwrap();
    assert_eq!(active.iter().map(|c| c.number).collect::<Vec<_>>(), vec![late.number, early.number]);
    let digest = s.digest_data(t0()).await.unwrap();
    assert_eq!(digest.by_status, vec![("acknowledged".into(), 1), ("open".into(), 1)]);
    assert_eq!(digest.breaches, vec![(early.number, "respond deadline passed".into())]);
    assert_eq!(digest.due.len(), 2);
    assert_eq!(digest.due[0].0, late.number);
    assert_eq!(digest.due[1].3, t0() + TimeDelta::hours(4), "the early case's resolve comes before its update");
    assert_eq!(s.receipts_since("ops@acme.com", t0() - TimeDelta::hours(1)).await.unwrap(), 0);
    // Both SMS went out at +3h with no delivery report yet; one comes in.
    let sent = t0() + TimeDelta::hours(3);
    let quiet = s.unconfirmed_sms(sent - TimeDelta::hours(1), sent + TimeDelta::minutes(10), 10).await.unwrap();
    assert_eq!(quiet.len(), 2);
    assert!(quiet[0].id > quiet[1].id, "newest first");
    assert!(
        s.unconfirmed_sms(sent + TimeDelta::milliseconds(1), sent + TimeDelta::hours(1), 10).await.unwrap().is_empty()
    );
    assert!(
        s.report_delivery(quiet[0].id, PageStatus::Delivered, None, None, sent + TimeDelta::minutes(1)).await.unwrap()
    );
    let quiet = s.unconfirmed_sms(sent - TimeDelta::hours(1), sent + TimeDelta::minutes(10), 10).await.unwrap();
    assert_eq!(quiet.len(), 1);
}

async fn migrate_twice_and_from_three_instances_at_once(b: &Backend) {
    b.store.migrate().await.unwrap();
    b.store.migrate().await.unwrap();
    open_case(&*b.store, t0(), TimeDelta::minutes(5)).await;
    // Three instances starting together on an empty database.
    let fresh = match &b._keep {
        Keep::Sqlite(_) => {
            let dir = tempfile::tempdir().unwrap();
            let db = Database { url: format!("sqlite://{}", dir.path().join("x.db").display()), ..Database::default() };
            (db, Keep::Sqlite(dir))
        }
        Keep::Postgres(first) => {
            let fresh = FreshDb::create(first.admin()).await;
            (Database { url: fresh.url.clone(), ..Database::default() }, Keep::Postgres(fresh))
        }
    };
    let (db, _keep) = fresh;
    let opens = (0..3).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { tocsin::store::open(&db).await })
    });
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every instance migrates or finds it done"));
    }
    for s in &stores {
        s.migrate().await.unwrap();
    }
    let c = open_case(&*stores[2], t0(), TimeDelta::minutes(5)).await;
    assert_eq!(stores[0].case(c.number).await.unwrap().unwrap(), c);
}

async fn racing_commits_on_one_case_give_one_winner(b: &Backend) {
    let c = open_case(&*b.store, t0(), TimeDelta::minutes(5)).await;
    let due = t0() + TimeDelta::minutes(5);
    let timer = b.store.claim_timers(due, "a", TimeDelta::minutes(1), 1).await.unwrap()[0];
    // Six changes decided on version 1 at once, from six connections; half
    // of them fire the timer "a" holds.
    let mut racers = Vec::new();
    for k in 0..6 {
        let store = b.reopen().await;
        let c = c.clone();
        racers.push(tokio::spawn(async move {
            let mut tr = Transition::new(&c, due);
            tr.events.push(NewEvent {
                at: due,
                kind: EventKind::Note,
                actor: format!("racer{k}"),
                channel: None,
                text: String::new(),
            });
            let consume = (k % 2 == 0).then_some((timer.id, "a"));
            store.commit(&tr, 1, consume).await
        }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(case) => {
                won += 1;
                assert_eq!(case.version, 2);
            }
            Err(StoreError::Conflict | StoreError::LostLease) => {}
            Err(e) => panic!("a race must end in Conflict or LostLease, not {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one change applies");
    assert_eq!(b.store.timeline(c.number).await.unwrap().len(), 2, "the opening and one note");
    assert_eq!(b.store.case(c.number).await.unwrap().unwrap().version, 2);
}

// --- mail verification (issue 13) ---
async fn an_unverified_case_keeps_its_mark_and_an_old_setting_can_be_moved_out(b: &Backend) {
    let s = &*b.store;
    let mut c = case_at(t0());
    c.unverified = true;
    let mut tr = Transition::new(&c, t0());
    tr.events.push(NewEvent {
        at: t0(),
        kind: EventKind::Unverified,
        actor: "tocsin".into(),
        channel: Some(Via::Scheduler),
        text: "no DKIM signature".into(),
    });
    let opened = s.create_case(&tr).await.unwrap();
    assert!(opened.unverified);
    let read = s.case(opened.number).await.unwrap().unwrap();
    assert!(read.unverified, "the mark is stored");
    // A change of the case keeps it (it is set at opening only).
    s.commit(&acked(&read, t0() + TimeDelta::minutes(1)), read.version, None).await.unwrap();
    assert!(s.case(opened.number).await.unwrap().unwrap().unverified);
    assert_eq!(s.timeline(opened.number).await.unwrap()[0].kind, "unverified");
    assert!(!open_case(s, t0(), TimeDelta::minutes(5)).await.unverified, "others are not marked");
    // The reply key an older Tocsin kept in the settings table.
    assert_eq!(s.read_setting("reply_key").await.unwrap(), None);
    s.setting("reply_key", "old").await.unwrap();
    assert_eq!(s.read_setting("reply_key").await.unwrap().as_deref(), Some("old"));
    s.delete_setting("reply_key").await.unwrap();
    assert_eq!(s.read_setting("reply_key").await.unwrap(), None);
    s.delete_setting("reply_key").await.unwrap();
}

// --- Twilio replays and new-case limits (issue 13) ---

async fn a_twilio_key_is_claimed_once_even_by_racing_instances(b: &Backend) {
    let s = &*b.store;
    let long_ago = t0() - TimeDelta::days(90);
    assert!(s.claim_twilio("SM1", "sms", t0(), long_ago).await.unwrap());
    assert!(!s.claim_twilio("SM1", "sms", t0(), long_ago).await.unwrap(), "a replay");
    // Status callbacks are keyed by SID and status: each status once.
    assert!(s.claim_twilio("SM1", "failed", t0(), long_ago).await.unwrap());
    assert!(!s.claim_twilio("SM1", "failed", t0(), long_ago).await.unwrap());
    assert!(s.claim_twilio("SM1", "delivered", t0(), long_ago).await.unwrap());
    // A key handed back (its action failed) can be claimed again.
    s.release_twilio("SM1", "sms").await.unwrap();
    assert!(s.claim_twilio("SM1", "sms", t0(), long_ago).await.unwrap());
    // Keys older than `forget_before` are pruned by the next claim.
    let later = t0() + TimeDelta::days(91);
    assert!(s.claim_twilio("SM2", "sms", later, later - TimeDelta::days(90)).await.unwrap());
    assert!(s.claim_twilio("SM1", "sms", later, later - TimeDelta::days(90)).await.unwrap(), "forgotten");
    // Eight instances receiving the same replay at once: one acts.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = b.reopen().await;
        racers.push(tokio::spawn(async move { store.claim_twilio("SM3", "sms", t0(), long_ago).await.unwrap() }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1);
}

async fn mail_openings_are_counted_by_sender_and_domain(b: &Backend) {
    let s = &*b.store;
    let env = Envelope { from: Some("x@acme.com".into()), to: vec!["help@support.example.com".into()] };
    // Cases opened from mail (with a filing) count; one opened over the
    // API does not.
    let from_mail = |requester: &str, opened: DateTime<Utc>, inbox_id: i64| {
        let c = Case { requester: requester.into(), ..case_at(opened) };
        let mut tr = Transition::new(&c, opened);
        tr.filing = Some(Filing {
            inbox_id,
            message_id: None,
            status: InboxStatus::Filed,
            note: String::new(),
            attachments: Vec::new(),
        });
        tr
    };
    let mut numbers = Vec::new();
    for (requester, minutes_ago) in
        [("ops@acme.com", 90), ("ops@acme.com", 50), ("ops@acme.com", 10), ("dev@acme.com", 5)]
    {
        let at = t0() - TimeDelta::minutes(minutes_ago);
        let id = s.receive_mail(b"From: x@acme.com\r\n\r\nx", &env, "smtp", at).await.unwrap();
        numbers.push(s.create_case(&from_mail(requester, at, id)).await.unwrap().number);
    }
    s.create_case(&Transition::new(&case_at(t0()), t0())).await.unwrap();
    let since = t0() - TimeDelta::hours(1);
    let recent = s.mail_openings_since("ops@acme.com", "acme.com", since).await.unwrap();
    assert_eq!((recent.sender, recent.domain), (2, 3));
    let recent = s.mail_openings_since("new@other.org", "other.org", since).await.unwrap();
    assert_eq!((recent.sender, recent.domain), (0, 0));
    // The newest case of a requester that is neither resolved nor closed.
    let newest_ops = s.open_case_of("ops@acme.com").await.unwrap();
    let api_case = *s.cases(None, 1).await.unwrap().first().map(|c| &c.number).unwrap();
    assert_eq!(newest_ops, Some(api_case), "the API case has requester ops@acme.com too");
    for n in [api_case, numbers[2]] {
        let c = s.case(n).await.unwrap().unwrap();
        let resolved = Case { status: Status::Resolved, resolved_at: Some(t0()), ..c.clone() };
        s.commit(&Transition::new(&resolved, t0()), c.version, None).await.unwrap();
    }
    assert_eq!(s.open_case_of("ops@acme.com").await.unwrap(), Some(numbers[1]));
    assert_eq!(s.open_case_of("nobody@acme.com").await.unwrap(), None);
}

async fn held_mail_is_listed_and_counted(b: &Backend) {
    let s = &*b.store;
    let env = Envelope { from: Some("ops@acme.com".into()), to: vec!["help@support.example.com".into()] };
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            s.receive_mail(format!("From: ops@acme.com\r\n\r\n{i}").as_bytes(), &env, "smtp", t0()).await.unwrap(),
        );
    }
    assert_eq!(s.inbox_count(InboxStatus::Held).await.unwrap(), 0);
    for id in &ids[..2] {
        assert!(s.settle_mail(*id, InboxStatus::Held, "held: over the limit", t0()).await.unwrap());
    }
    assert_eq!(s.inbox_count(InboxStatus::Held).await.unwrap(), 2);
    assert_eq!(s.inbox_count(InboxStatus::Pending).await.unwrap(), 1);
    let held = s.inbox_in(InboxStatus::Held, 10).await.unwrap();
    assert_eq!(held.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[1], ids[0]], "newest first");
    assert_eq!((held[0].status, held[0].note.as_str()), (InboxStatus::Held, "held: over the limit"));
    assert_eq!(held[0].raw, b"From: ops@acme.com\r\n\r\n1", "kept raw");
    assert_eq!(s.inbox_in(InboxStatus::Held, 1).await.unwrap().len(), 1);
    // Held is settled: the inbox worker does not file it again.
    assert_eq!(s.pending_mail(10).await.unwrap(), vec![ids[2]]);
}

// --- issue 16: recovery ---

async fn a_lone_instance_takes_over_every_lease_left_at_once(b: &Backend) {
    let s = &*b.store;
    for i in 0..2 {
        open_case(s, t0() + TimeDelta::seconds(i), TimeDelta::minutes(5)).await;
    }
    let now = t0() + TimeDelta::hours(1);
    let lease = TimeDelta::seconds(30);
    // A process that died mid-batch held two timers and two pages; the new
    // one already holds the other timers.
    let dead_timers = s.claim_timers(now, "dead", lease, 2).await.unwrap();
    let own = s.claim_timers(now, "new", lease, 10).await.unwrap();
    let dead_pages = s.claim_pages(now, "dead", lease, 2).await.unwrap();
    assert_eq!((dead_timers.len(), own.len(), dead_pages.len()), (2, 2, 2));
    let later = now + TimeDelta::seconds(1);
    assert!(s.claim_timers(later, "new", lease, 10).await.unwrap().is_empty(), "leased until now + 30 s");
    assert_eq!(s.take_over_leases("new", later).await.unwrap(), (2, 2));
    assert_eq!(s.take_over_leases("new", later).await.unwrap(), (0, 0), "nothing left to take");
    let timers = s.claim_timers(later, "new", lease, 10).await.unwrap();
    assert_eq!(
        timers.iter().map(|t| t.id).collect::<BTreeSet<_>>(),
        dead_timers.iter().map(|t| t.id).collect::<BTreeSet<_>>(),
        "the dead process's timers fire now; the new one's own lease is untouched"
    );
    let pages = s.claim_pages(later, "new", lease, 10).await.unwrap();
    assert_eq!(pages.iter().map(|p| p.id).collect::<Vec<_>>(), dead_pages.iter().map(|p| p.id).collect::<Vec<_>>());
    assert!(pages.iter().all(|p| p.in_doubt && p.attempts == 2), "taken over pages are in doubt: looked up first");
    let sent = Delivery::Sent { provider_id: None, message_id: None };
    let outcomes: Vec<_> = dead_pages.iter().map(|p| (p.id, sent.clone())).collect();
    assert_eq!(
        s.finish_pages("dead", &outcomes, later).await.unwrap(),
        0,
        "the dead owner's late answer counts for nothing"
    );
}

// --- issue 14: replies ---

async fn a_reply_keeps_its_author_and_answers_the_customers_own_mail(b: &Backend) {
    let s = &*b.store;
    let env = Envelope { from: Some("ops@acme.com".into()), to: vec!["help@support.example.com".into()] };
    let raw = b"From: ops@acme.com\r\n\r\nhelp";
    let filing = |inbox_id, id: Option<&str>, status| Filing {
        inbox_id,
        message_id: id.map(str::to_owned),
        status,
        note: String::new(),
        attachments: Vec::new(),
    };
    let one = s.receive_mail(raw, &env, "smtp", t0()).await.unwrap();
    let mut tr = Transition::new(&case_at(t0()), t0());
    tr.filing = Some(filing(one, Some("in1@acme.com"), InboxStatus::Filed));
    let c = s.create_case(&tr).await.unwrap();
    assert_eq!(s.customer_messages(c.number).await.unwrap(), vec!["in1@acme.com".to_owned()]);
    // An auto-reply, an engineer's command and a mail without a Message-ID
    // are not the customer's thread; a second customer mail is.
    let mut version = c.version;
    for (id, status) in [
        (Some("ooo@acme.com"), InboxStatus::Automatic),
        (Some("cmd@example.com"), InboxStatus::Command),
        (None, InboxStatus::Filed),
        (Some("in2@acme.com"), InboxStatus::Filed),
    ] {
        let row = s.receive_mail(raw, &env, "smtp", t0()).await.unwrap();
        let mut tr = Transition::new(&c, t0());
        tr.filing = Some(filing(row, id, status));
        version = s.commit(&tr, version, None).await.unwrap().version;
    }
    assert_eq!(
        s.customer_messages(c.number).await.unwrap(),
        vec!["in1@acme.com".to_owned(), "in2@acme.com".to_owned()],
        "oldest first"
    );
    assert_eq!(s.customer_messages(CaseNumber(c.number.0 + 1)).await.unwrap(), Vec::<String>::new());
    // The reply's author is stored with its outbox row and read back by
    // every reader of pages.
    let mut tr = Transition::new(&c, t0());
    tr.pages.push(NewPage {
        person: None,
        address: "ops@acme.com".into(),
        channel: ChannelKind::Email,
        kind: PageKind::CustomerReply,
        position: None,
        detail: "We are on it.".into(),
        author: Some("ana".parse().unwrap()),
    });
    tr.pages.push(page_to("ben", ChannelKind::Sms, PageKind::Page, None));
    s.commit(&tr, version, None).await.unwrap();
    let pages = s.pages_of(c.number).await.unwrap();
    let reply = pages.iter().find(|p| p.kind == PageKind::CustomerReply).unwrap();
    assert_eq!((reply.person.as_ref(), reply.author.as_ref().map(|a| a.as_str())), (None, Some("ana")));
    assert_eq!(reply.detail, "We are on it.");
    assert!(pages.iter().filter(|p| p.kind == PageKind::Page).all(|p| p.author.is_none()));
    let claimed = s.claim_pages(t0(), "d1", TimeDelta::seconds(30), 10).await.unwrap();
    let reply = claimed.iter().find(|p| p.kind == PageKind::CustomerReply).unwrap();
    assert_eq!(reply.author.as_ref().map(|a| a.as_str()), Some("ana"));
    assert_eq!(s.page(reply.id).await.unwrap().unwrap().author, reply.author);
}

async fn attachments_are_listed_with_their_filing_and_only_on_their_case(b: &Backend) {
    use tocsin::mail::attachments::Attachment;
    let s = &*b.store;
    let env = Envelope { from: Some("ops@acme.com".into()), to: vec!["help@support.example.com".into()] };
    let one = s.receive_mail(b"From: ops@acme.com\r\n\r\nx", &env, "smtp", t0()).await.unwrap();
    let attachment =
        |part, name: &str| Attachment { part, name: name.into(), content_type: "image/png".into(), size: 70 };
    let mut tr = Transition::new(&case_at(t0()), t0());
    tr.filing = Some(Filing {
        inbox_id: one,
        message_id: Some("a1@acme.com".into()),
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: vec![attachment(0, "a.png"), attachment(2, "b.png")],
    });
    let c = s.create_case(&tr).await.unwrap();
    let other = s.create_case(&Transition::new(&case_at(t0()), t0())).await.unwrap();
    let list = s.attachments_of(c.number).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[1].part, list[1].name.as_str(), list[1].content_type.as_str(), list[1].size),
        (2, "b.png", "image/png", 70)
    );
    assert_eq!((list[0].inbox_id, list[0].case, list[0].at), (one, c.number, t0()));
    assert_eq!(s.attachment(c.number, list[1].id).await.unwrap(), Some(list[1].clone()));
    assert_eq!(s.attachment(other.number, list[1].id).await.unwrap(), None, "only on its own case");
    assert!(s.attachments_of(other.number).await.unwrap().is_empty());
    let messages = s.case_messages(c.number).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].id, messages[0].received_at, messages[0].status), (one, t0(), InboxStatus::Filed));
    // A filing refused whole (a second filing of the row) lists nothing.
    let mut again = Transition::new(&c, t0());
    again.filing = Some(Filing {
        inbox_id: one,
        message_id: None,
        status: InboxStatus::Filed,
        note: String::new(),
        attachments: vec![attachment(5, "c.png")],
    });
    assert!(matches!(s.commit(&again, c.version, None).await, Err(StoreError::AlreadyFiled)));
    assert_eq!(s.attachments_of(c.number).await.unwrap().len(), 2, "rolled back");
}

// --- issue 15: urgency ---
async fn a_held_case_keeps_its_urgency_hold_and_hold_timer(b: &Backend) {
    let s = &*b.store;
    let until = t0() + TimeDelta::hours(7);
    let mut c = case_at(t0());
    c.urgency = Urgency::WorkingHours;
    c.held_until = Some(until);
    let mut tr = Transition::new(&c, t0());
    tr.events.push(NewEvent {
        at: t0(),
        kind: EventKind::Held,
        actor: "tocsin".into(),
        channel: Some(Via::Scheduler),
        text: "held".into(),
    });
    tr.set_timer(TimerKind::Hold, until, Position::FIRST);
    let opened = s.create_case(&tr).await.unwrap();
    let read = s.case(opened.number).await.unwrap().unwrap();
    assert_eq!((read.urgency, read.held_until), (Urgency::WorkingHours, Some(until)));
    assert!(
        s.claim_timers(until - TimeDelta::milliseconds(1), "a", TimeDelta::seconds(30), 10).await.unwrap().is_empty()
    );
    let got = s.claim_timers(until, "a", TimeDelta::seconds(30), 10).await.unwrap();
    assert_eq!(got.iter().map(|t| (t.case, t.kind)).collect::<Vec<_>>(), [(read.number, TimerKind::Hold)]);
    // Released by a change: both columns are rewritten.
    let mut next = read.clone();
    next.urgency = Urgency::High;
    next.held_until = None;
    let changed = s.commit(&Transition::new(&next, t0()), read.version, Some((got[0].id, "a"))).await.unwrap();
    assert_eq!((changed.urgency, changed.held_until), (Urgency::High, None));
    let read = s.case(opened.number).await.unwrap().unwrap();
    assert_eq!((read.urgency, read.held_until), (Urgency::High, None));
    assert_eq!(s.timeline(opened.number).await.unwrap()[0].kind, "held");
}

// --- issue 15: finding cases ---
async fn find_cases_filters_pages_by_cursor_and_limits_an_engineer_to_their_cases(b: &Backend) {
    let s = &*b.store;
    let mut numbers = Vec::new();
    for i in 0..12i64 {
        let mut c = case_at(t0() + TimeDelta::minutes(i));
        c.subject = if i % 4 == 0 { format!("Disk FULL on db{i}") } else { format!("slow {i}") };
        c.body = if i == 5 { "at 100% since noon".into() } else { "nothing".into() };
        c.customer = (i % 2 == 0).then(|| "Acme".to_owned());
        c.requester = format!("r{}@example.com", i % 3);
        c.priority = if i < 6 { "P1".parse().unwrap() } else { "P3".parse().unwrap() };
        let mut tr = Transition::new(&c, c.opened_at);
        if i == 7 {
            // Paged Ben, not assigned to him.
            tr.pages.push(page_to("ben", ChannelKind::Sms, PageKind::Page, Some(Position::FIRST)));
        }
        let opened = s.create_case(&tr).await.unwrap();
        if i == 3 || i == 9 {
            s.commit(&acked(&opened, opened.opened_at), opened.version, None).await.unwrap();
        }
        numbers.push(opened.number);
    }
    let find =
        |q: CaseQuery| async move { s.find_cases(&q).await.unwrap().iter().map(|c| c.number).collect::<Vec<_>>() };
    let all = CaseQuery { limit: 100, ..Default::default() };
    let pick = |idx: &[usize]| idx.iter().rev().map(|i| numbers[*i]).collect::<Vec<_>>();
    assert_eq!(find(all.clone()).await, pick(&(0..12).collect::<Vec<_>>()), "newest first");
    // The cursor: below a number, and a limit.
    let q = CaseQuery { before: Some(numbers[6]), limit: 3, ..all.clone() };
    assert_eq!(find(q).await, pick(&[3, 4, 5]));
    // Each filter, and together.
    assert_eq!(find(CaseQuery { text: Some("disk full".into()), ..all.clone() }).await, pick(&[0, 4, 8]));
    assert_eq!(find(CaseQuery { text: Some("100%".into()), ..all.clone() }).await, pick(&[5]));
    assert_eq!(find(CaseQuery { text: Some("1_0".into()), ..all.clone() }).await, pick(&[]), "_ is no wildcard");
    assert_eq!(find(CaseQuery { customer: Some("Acme".into()), ..all.clone() }).await, pick(&[0, 2, 4, 6, 8, 10]));
    assert_eq!(find(CaseQuery { requester: Some("r1@example.com".into()), ..all.clone() }).await, pick(&[1, 4, 7, 10]));
    assert_eq!(
        find(CaseQuery { priority: Some("P3".parse().unwrap()), ..all.clone() }).await,
        pick(&[6, 7, 8, 9, 10, 11])
    );
    assert_eq!(find(CaseQuery { status: Some(Status::Acknowledged), ..all.clone() }).await, pick(&[3, 9]));
    assert_eq!(find(CaseQuery { assignee: Some("ana".parse().unwrap()), ..all.clone() }).await, pick(&[3, 9]));
    let q = CaseQuery { customer: Some("Acme".into()), priority: Some("P1".parse().unwrap()), ..all.clone() };
    assert_eq!(find(q).await, pick(&[0, 2, 4]));
    // An engineer: assigned to them, or paged them.
    assert_eq!(find(CaseQuery { seen_by: Some("ana".parse().unwrap()), ..all.clone() }).await, pick(&[3, 9]));
    assert_eq!(find(CaseQuery { seen_by: Some("ben".parse().unwrap()), ..all.clone() }).await, pick(&[7]));
    assert_eq!(find(CaseQuery { seen_by: Some("chen".parse().unwrap()), ..all }).await, pick(&[]));
}

// --- issue 15: calendar feed versions ---
async fn a_feed_shift_keeps_its_version_until_its_fingerprint_changes(b: &Backend) {
    let s = &*b.store;
    let shift = |uid: &str, f: &str| (uid.to_owned(), f.to_owned());
    let t1 = t0() + TimeDelta::hours(1);
    let got = s.feed_versions(&[shift("a", "1|x"), shift("b", "2|y")], t0()).await.unwrap();
    assert_eq!(got, [(0, t0()), (0, t0())]);
    // Unchanged: the same; changed: one more, stamped now.
    let got = s.feed_versions(&[shift("a", "1|x"), shift("b", "3|y")], t1).await.unwrap();
    assert_eq!(got, [(0, t0()), (1, t1)]);
    let got = s.feed_versions(&[shift("b", "3|y")], t1 + TimeDelta::hours(1)).await.unwrap();
    assert_eq!(got, [(1, t1)]);
    // Two fetches at once raise a sequence once.
    let four = [shift("b", "4|y")];
    let (x, y) = tokio::join!(
        s.feed_versions(&four, t1 + TimeDelta::hours(2)),
        s.feed_versions(&four, t1 + TimeDelta::hours(2))
    );
    assert_eq!(x.unwrap()[0].0, 2);
    assert_eq!(y.unwrap()[0].0, 2);
}

// --- rehearsing rules (issue 18) ---
async fn the_next_page_due_is_a_queued_one_a_retry_or_a_lapsed_lease(b: &Backend) {
    let s = &*b.store;
    assert_eq!(s.next_page_at().await.unwrap(), None, "nothing queued");
    let c = open_case(s, t0(), TimeDelta::minutes(5)).await;
    let created = s.pages_of(c.number).await.unwrap()[0].created_at;
    assert_eq!(s.next_page_at().await.unwrap(), Some(created), "a new page is due when queued");
    let lease = TimeDelta::seconds(30);
    let now = t0() + TimeDelta::seconds(1);
    let got = s.claim_pages(now, "a", lease, 10).await.unwrap();
    assert_eq!(s.next_page_at().await.unwrap(), Some(now + lease), "a claimed page is due when its lease lapses");
    let retry_at = now + TimeDelta::seconds(10);
    s.finish_pages("a", &[(got[0].id, Delivery::Deferred { at: retry_at })], now).await.unwrap();
    assert_eq!(s.next_page_at().await.unwrap(), Some(retry_at), "a held-back page is due at its next attempt");
    let again = s.claim_pages(retry_at, "a", lease, 10).await.unwrap();
    let sent = Delivery::Sent { provider_id: None, message_id: None };
    s.finish_pages("a", &[(again[0].id, sent)], retry_at).await.unwrap();
    assert_eq!(s.next_page_at().await.unwrap(), None, "a sent page is never due again");
}
