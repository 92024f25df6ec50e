//! Properties of the SLA clock arithmetic in zones with unusual DST rules
//! (30-minute shifts, +05:45, +13:45, southern hemisphere), for random
//! starts and targets.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use tocsin::calendar::{Calendar, Holiday, Range};

const ZONES: [Tz; 7] = [
    Tz::Europe__London,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::Asia__Kathmandu,
    Tz::Pacific__Chatham,
    Tz::America__Sao_Paulo,
    Tz::UTC,
];

/// Weekly shapes: office hours with lunch, a night shift across midnight,
/// early-morning hours that contain DST changes, and whole days.
fn shape(n: usize) -> [Vec<Range>; 7] {
    let r = |s: &str| Range::parse(s).unwrap();
    let mut week: [Vec<Range>; 7] = Default::default();
    match n {
        0 => {
            for day in week.iter_mut().take(5) {
                *day = vec![r("09:00-12:30"), r("13:30-17:30")];
            }
        }
        1 => {
            for d in [0, 2, 4, 5] {
                week[d] = vec![r("22:00-06:00")];
            }
        }
        2 => {
            for day in week.iter_mut() {
                *day = vec![r("00:30-03:30")];
            }
        }
        _ => {
            for d in [5, 6] {
                week[d] = vec![r("00:00-24:00")];
            }
        }
    }
    week
}

fn calendar(zone: usize, shape_n: usize, holidays: bool) -> Calendar {
    let days: BTreeSet<Holiday> = if holidays {
        ["12-25", "01-01", "2027-04-02"].iter().map(|h| Holiday::parse(h).unwrap()).collect()
    } else {
        BTreeSet::new()
    };
    Calendar::business("p", ZONES[zone], shape(shape_n), days).unwrap()
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

proptest! {
    #![proptest_config(crate::property(
        400,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pure/calendar_props.proptest-regressions"),
    ))]

    #[test]
    fn working_time_up_to_the_deadline_is_the_target(
        zone in 0..ZONES.len(), shape_n in 0..4usize, holidays: bool,
        // 2024-01-01 .. 2028-12-31
        start in 1_704_067_200i64..1_861_920_000, target in 1i64..(21 * 24 * 3600),
    ) {
        let c = calendar(zone, shape_n, holidays);
        let s = instant(start);
        let d = TimeDelta::seconds(target);
        let due = c.deadline(s, d).unwrap();
        prop_assert_eq!(c.working_time(s, due), d);
        // Whole-second inputs give a whole-second deadline.
        prop_assert_eq!(due.timestamp_subsec_nanos(), 0);
        // And nothing earlier would do: one second less falls short.
        prop_assert!(c.working_time(s, due - TimeDelta::seconds(1)) < d);
    }

    #[test]
    fn deadlines_are_monotonic_in_the_target(
        zone in 0..ZONES.len(), shape_n in 0..4usize,
        start in 1_704_067_200i64..1_861_920_000, a in 0i64..(7 * 24 * 3600), b in 0i64..(7 * 24 * 3600),
    ) {
        let c = calendar(zone, shape_n, false);
        let s = instant(start);
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(c.deadline(s, TimeDelta::seconds(lo)).unwrap() <= c.deadline(s, TimeDelta::seconds(hi)).unwrap());
    }

    #[test]
    fn working_time_adds_up_over_a_split(
        zone in 0..ZONES.len(), shape_n in 0..4usize,
        start in 1_704_067_200i64..1_861_920_000, x in 0i64..(10 * 24 * 3600), y in 0i64..(10 * 24 * 3600),
    ) {
        let c = calendar(zone, shape_n, true);
        let (a, b, z) = (instant(start), instant(start + x), instant(start + x + y));
        prop_assert_eq!(c.working_time(a, b) + c.working_time(b, z), c.working_time(a, z));
    }
}
