//! Properties of on-call resolution: the answer always comes from an active
//! layer or an override, and handoffs fall on the configured wall clock.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;
use tocsin::people::PersonId;
use tocsin::schedule::{Active, Layer, Override, Schedule};

const ZONES: [Tz; 5] =
    [Tz::Europe__London, Tz::America__New_York, Tz::Australia__Lord_Howe, Tz::Pacific__Chatham, Tz::Asia__Kathmandu];

fn id(s: &str) -> PersonId {
    s.parse().unwrap()
}

fn schedule(zone: usize, shift_hours: i64, handoff_minute: u32, with_window: bool) -> Schedule {
    let start = NaiveDateTime::parse_from_str("2026-01-05T00:00", "%Y-%m-%dT%H:%M").unwrap()
        + TimeDelta::minutes(handoff_minute.into());
    let mut layers = vec![Layer {
        members: vec![id("ana"), id("ben"), id("chen")],
        shift: TimeDelta::hours(shift_hours),
        start,
        active: None,
    }];
    if with_window {
        layers.push(Layer {
            members: vec![id("dana"), id("erin")],
            shift: TimeDelta::days(1),
            start: start + TimeDelta::hours(18),
            active: Some(Active { days: vec![Weekday::Mon, Weekday::Wed, Weekday::Fri], from: 18 * 60, to: 7 * 60 }),
        });
    }
    Schedule { name: "p".into(), tz: ZONES[zone], layers }
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// Inside the override its person is on call. Outside it the answer is a
/// member of a layer whose window is open once the first rotation has
/// started, and nobody before: the first handoff (`start`) is when the
/// rotation begins (PRODUCT.md, "Schedule"; `tocsin oncall` prints `-`).
fn the_answer_comes_from_an_active_layer_or_an_override(
    zone: usize,
    shift: i64,
    minute: u32,
    window: bool,
    at: i64,
    o_start: i64,
    o_len: i64,
) -> Result<(), TestCaseError> {
    let s = schedule(zone, shift, minute, window);
    let o = [Override { person: id("zed"), start: instant(o_start), end: instant(o_start + o_len) }];
    let t = instant(at);
    let who = s.on_call(&o, t);
    if o[0].start <= t && t < o[0].end {
        prop_assert_eq!(who, Some(id("zed")));
        return Ok(());
    }
    // The windowed layer starts 18 hours after the first: the first layer's
    // first handoff is when anybody is first on call.
    let first = s.handoff(&s.layers[0], 0).unwrap();
    let Some(who) = who else {
        prop_assert!(t < first, "nobody on call at {} though the rotation began at {}", t, first);
        return Ok(());
    };
    prop_assert!(t >= first, "{} on call at {}, before the first handoff at {}", who, t, first);
    prop_assert!(["ana", "ben", "chen", "dana", "erin"].contains(&who.as_str()));
    if ["dana", "erin"].contains(&who.as_str()) {
        // Only inside the window: Mon/Wed/Fri from 18:00 to 07:00 next morning.
        let local = t.with_timezone(&s.tz).naive_local();
        let h = local.hour();
        prop_assert!(!(7..18).contains(&h), "{} outside the window at {}", who, local);
    }
    Ok(())
}

/// Found by the property below: `at` falls before the first handoff
/// (Monday 21:16 London), where nobody is on call, and the property used to
/// unwrap the answer.
#[test]
fn nobody_is_on_call_before_the_first_handoff() {
    let at = 1_767_600_000; // 2026-01-05T08:00:00Z
    for window in [false, true] {
        the_answer_comes_from_an_active_layer_or_an_override(0, 8, 1276, window, at, 1_800_000_000, 1).unwrap();
        assert_eq!(schedule(0, 8, 1276, window).on_call(&[], instant(at)), None);
    }
}

proptest! {
    #![proptest_config(crate::property(
        300,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pure/schedule_props.proptest-regressions"),
    ))]

    #[test]
    fn the_answer_is_a_member_of_an_active_layer_or_an_override(
        zone in 0..ZONES.len(), shift in prop::sample::select(vec![8i64, 12, 24, 168]), minute in 0u32..(24 * 60),
        window: bool, at in 1_767_600_000i64..1_830_000_000, o_start in 1_767_600_000i64..1_830_000_000, o_len in 1i64..200_000,
    ) {
        the_answer_comes_from_an_active_layer_or_an_override(zone, shift, minute, window, at, o_start, o_len)?;
    }

    #[test]
    fn handoffs_fall_on_the_configured_wall_clock(
        zone in 0..ZONES.len(), shift in prop::sample::select(vec![24i64, 168]), minute in 0u32..(24 * 60), k in 0i64..400,
    ) {
        let s = schedule(zone, shift, minute, false);
        let h = s.handoff(&s.layers[0], k).unwrap();
        let local = h.with_timezone(&s.tz).naive_local();
        let want = (minute / 60, minute % 60);
        // A handoff time that DST skips happens when the gap ends.
        let skipped = tocsin::schedule::to_utc(s.tz, local.date().and_hms_opt(want.0, want.1, 0).unwrap()) == Some(h)
            && (local.hour(), local.minute()) != want;
        prop_assert!((local.hour(), local.minute()) == want || skipped, "handoff {} at {}", k, local);
        // The person changes exactly there.
        let before = s.on_call(&[], h - TimeDelta::seconds(1));
        let after = s.on_call(&[], h);
        if k > 0 {
            prop_assert_ne!(before, after);
        }
    }

    #[test]
    fn next_change_finds_the_first_instant_the_answer_differs(
        zone in 0..ZONES.len(), shift in prop::sample::select(vec![8i64, 24, 168]), minute in 0u32..(24 * 60),
        window: bool, at in 1_767_600_000i64..1_830_000_000,
    ) {
        let s = schedule(zone, shift, minute, window);
        let t = instant(at);
        let until = t + TimeDelta::days(30);
        let next = s.next_change(&[], t, until).unwrap();
        prop_assert_ne!(s.on_call(&[], next), s.on_call(&[], t));
        // Nothing changes before it: sample the stretch every 10 minutes.
        let mut probe = t;
        while probe < next {
            prop_assert_eq!(s.on_call(&[], probe), s.on_call(&[], t));
            probe += TimeDelta::minutes(10);
        }
    }
}
