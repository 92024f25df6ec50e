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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_answer_is_a_member_of_an_active_layer_or_an_override(
        zone in 0..ZONES.len(), shift in prop::sample::select(vec![8i64, 12, 24, 168]), minute in 0u32..(24 * 60),
        window: bool, at in 1_767_600_000i64..1_830_000_000, o_start in 1_767_600_000i64..1_830_000_000, o_len in 1i64..200_000,
    ) {
        let s = schedule(zone, shift, minute, window);
        let o = [Override { person: id("zed"), start: instant(o_start), end: instant(o_start + o_len) }];
        let t = instant(at);
        let who = s.on_call(&o, t).unwrap();
        let in_override = o[0].start <= t && t < o[0].end;
        if in_override {
            prop_assert_eq!(who, id("zed"));
        } else {
            prop_assert!(["ana", "ben", "chen", "dana", "erin"].contains(&who.as_str()));
            if ["dana", "erin"].contains(&who.as_str()) {
                // Only inside the window: Mon/Wed/Fri from 18:00 to 07:00 next morning.
                let local = t.with_timezone(&s.tz).naive_local();
                let h = local.hour();
                prop_assert!(!(7..18).contains(&h), "{} outside the window at {}", who, local);
            }
        }
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
