//! Deadlines and working time on the DST transition days of seven zones,
//! each answer worked out by hand from the zone's rules (noted beside it).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tocsin::calendar::{Calendar, Holiday, Range};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A calendar in `tz` with the same `ranges` on the given weekdays
/// (0 = Monday).
fn cal(tz: Tz, days: &[usize], ranges: &[&str], holidays: &[&str]) -> Calendar {
    let mut week: [Vec<Range>; 7] = Default::default();
    for &d in days {
        week[d] = ranges.iter().map(|r| Range::parse(r).unwrap()).collect();
    }
    let holidays: BTreeSet<Holiday> = holidays.iter().map(|h| Holiday::parse(h).unwrap()).collect();
    Calendar::business("t", tz, week, holidays).unwrap()
}

fn deadline(c: &Calendar, from: &str, within: &str) -> String {
    let d = TimeDelta::from_std(humantime::parse_duration(within).unwrap()).unwrap();
    c.deadline(at(from), d).unwrap().with_timezone(&c.tz).to_rfc3339()
}

fn hours(c: &Calendar, from: &str, to: &str) -> f64 {
    c.working_time(at(from), at(to)).num_seconds() as f64 / 3600.0
}

const SUN: usize = 6;
const SAT: usize = 5;
const WEEKDAYS: [usize; 5] = [0, 1, 2, 3, 4];
const EVERY_DAY: [usize; 7] = [0, 1, 2, 3, 4, 5, 6];

#[test]
fn london_both_transitions() {
    let c = cal(Tz::Europe__London, &[SUN], &["00:00-03:00"], &[]);
    // 29 Mar: 00:00-01:00 GMT, 01:00-02:00 skipped, 02:00-03:00 BST = 2h,
    // contiguous in UTC (00:00Z-02:00Z).
    assert_eq!(hours(&c, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"), 2.0);
    assert_eq!(deadline(&c, "2026-03-29T00:30:00Z", "1h"), "2026-03-29T02:30:00+01:00");
    // 25 Oct: 00:00-02:00 BST, 01:00-03:00 GMT: 01:00-02:00 twice = 4h.
    assert_eq!(hours(&c, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z"), 4.0);
    assert_eq!(deadline(&c, "2026-10-25T00:00:00+01:00", "3h 30m"), "2026-10-25T02:30:00+00:00");
    // A whole-day calendar: the spring day is 23 hours long, autumn's 25.
    let all = cal(Tz::Europe__London, &EVERY_DAY, &["00:00-24:00"], &[]);
    assert_eq!(hours(&all, "2026-03-29T00:00:00+00:00", "2026-03-30T00:00:00+01:00"), 23.0);
    assert_eq!(hours(&all, "2026-10-25T00:00:00+01:00", "2026-10-26T00:00:00+00:00"), 25.0);
}

#[test]
fn new_york_both_transitions_and_a_range_starting_in_the_gap() {
    let c = cal(Tz::America__New_York, &[SUN], &["01:00-04:00"], &[]);
    // 8 Mar: 01:00-02:00 EST (06-07Z), 02:00-03:00 skipped, 03:00-04:00 EDT (07-08Z).
    assert_eq!(deadline(&c, "2026-03-08T01:30:00-05:00", "1h"), "2026-03-08T03:30:00-04:00");
    assert_eq!(hours(&c, "2026-03-07T00:00:00Z", "2026-03-09T00:00:00Z"), 2.0);
    // 1 Nov: 01:00-02:00 EDT (05-06Z), again EST (06-07Z), 02:00-04:00 EST (07-09Z).
    assert_eq!(deadline(&c, "2026-11-01T01:00:00-04:00", "3h"), "2026-11-01T03:00:00-05:00");
    assert_eq!(hours(&c, "2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z"), 4.0);
    // 02:30-05:00 on 8 Mar starts in the gap: only 03:00-05:00 EDT is real.
    let gap = cal(Tz::America__New_York, &[SUN], &["02:30-05:00"], &[]);
    assert_eq!(deadline(&gap, "2026-03-08T00:00:00-05:00", "1h"), "2026-03-08T04:00:00-04:00");
    // 00:00-02:30 ends in the gap: 00:00-02:00 EST only.
    let end_gap = cal(Tz::America__New_York, &[SUN], &["00:00-02:30"], &[]);
    assert_eq!(hours(&end_gap, "2026-03-08T00:00:00-05:00", "2026-03-08T12:00:00-04:00"), 2.0);
}

#[test]
fn lord_howe_half_hour_shifts() {
    let c = cal(Tz::Australia__Lord_Howe, &[SUN], &["01:00-03:00"], &[]);
    // 5 Apr: DST (+11) ends at 02:00, back to 01:30 (+10:30):
    // 01:00-02:00 (+11), 01:30-02:00 again (+10:30), 02:00-03:00 = 2h30.
    assert_eq!(hours(&c, "2026-04-04T00:00:00Z", "2026-04-05T12:00:00Z"), 2.5);
    assert_eq!(deadline(&c, "2026-04-05T01:00:00+11:00", "2h"), "2026-04-05T02:30:00+10:30");
    // 4 Oct: at 02:00 (+10:30) clocks go to 02:30 (+11): 1h30 of work.
    assert_eq!(hours(&c, "2026-10-03T00:00:00Z", "2026-10-04T12:00:00Z"), 1.5);
    assert_eq!(deadline(&c, "2026-10-04T01:00:00+10:30", "1h 15m"), "2026-10-04T02:45:00+11:00");
}

#[test]
fn kathmandu_quarter_hour_offset_weekends_and_a_leap_day() {
    let c = cal(Tz::Asia__Kathmandu, &WEEKDAYS, &["09:00-17:00"], &[]);
    // Friday 16:00: one hour on Friday, one on Monday.
    assert_eq!(deadline(&c, "2026-11-20T16:00:00+05:45", "2h"), "2026-11-23T10:00:00+05:45");
    // 2028-02-28 is a Monday; the next working day is 29 February.
    assert_eq!(deadline(&c, "2028-02-28T16:00:00+05:45", "2h"), "2028-02-29T10:00:00+05:45");
    // A start before opening waits for it.
    assert_eq!(deadline(&c, "2026-11-24T06:00:00+05:45", "30m"), "2026-11-24T09:30:00+05:45");
}

#[test]
fn chatham_both_transitions() {
    let c = cal(Tz::Pacific__Chatham, &[SUN], &["02:00-05:00"], &[]);
    // 5 Apr: at 03:45 (+13:45) back to 02:45 (+12:45): 02:00-03:45,
    // 02:45-03:45 again, 03:45-05:00 = 1h45 + 1h + 1h15 = 4h.
    assert_eq!(hours(&c, "2026-04-04T00:00:00Z", "2026-04-05T12:00:00Z"), 4.0);
    assert_eq!(deadline(&c, "2026-04-05T02:00:00+13:45", "3h 30m"), "2026-04-05T04:30:00+12:45");
    // 27 Sep: at 02:45 (+12:45) on to 03:45 (+13:45): 45m + 1h15 = 2h.
    assert_eq!(hours(&c, "2026-09-26T00:00:00Z", "2026-09-27T12:00:00Z"), 2.0);
    assert_eq!(deadline(&c, "2026-09-27T02:00:00+12:45", "1h"), "2026-09-27T04:00:00+13:45");
}

#[test]
fn sao_paulo_midnight_transitions_of_2018_and_2019() {
    let mut week: [Vec<Range>; 7] = Default::default();
    week[SAT] = vec![Range::parse("22:00-24:00").unwrap()];
    week[SUN] = vec![Range::parse("00:00-02:00").unwrap()];
    let c = Calendar::business("t", Tz::America__Sao_Paulo, week, BTreeSet::new()).unwrap();
    // 4 Nov 2018: midnight skipped to 01:00 (-02). Saturday 23:00-24:00 (-03)
    // is one hour, Sunday has only 01:00-02:00.
    assert_eq!(deadline(&c, "2018-11-03T23:00:00-03:00", "1h 30m"), "2018-11-04T01:30:00-02:00");
    // 17 Feb 2019: at midnight (-02) back to 23:00 (-03): Saturday's
    // 23:00-24:00 happens twice (3h), then Sunday 00:00-02:00 (-03).
    assert_eq!(hours(&c, "2019-02-16T12:00:00Z", "2019-02-17T03:00:00Z"), 3.0);
    assert_eq!(deadline(&c, "2019-02-16T22:00:00-02:00", "4h"), "2019-02-17T01:00:00-03:00");
    // No DST since 2019: an ordinary day.
    assert_eq!(deadline(&c, "2026-11-21T23:00:00-03:00", "2h"), "2026-11-22T01:00:00-03:00");
}

#[test]
fn utc_weekends_holidays_and_weeks() {
    let c = cal(Tz::UTC, &WEEKDAYS, &["09:00-17:00"], &["2026-11-23", "12-25"]);
    // Friday 16:30, Monday a holiday: 30 minutes then Tuesday.
    assert_eq!(deadline(&c, "2026-11-20T16:30:00Z", "1h"), "2026-11-24T09:30:00+00:00");
    // Yearly holidays recur.
    assert_eq!(deadline(&c, "2029-12-24T16:00:00Z", "2h"), "2029-12-26T10:00:00+00:00");
    // Four weeks of 40 hours from a Monday, less the holiday on the 23rd,
    // end at the close of the Monday after.
    assert_eq!(deadline(&c, "2026-11-02T09:00:00Z", "160h"), "2026-11-30T17:00:00+00:00");
}

#[test]
fn office_calendar_two_weeks_end_at_friday_close() {
    // The shipped office calendar: 4 x 8h30 + 7h30 = 41h30 a week.
    let mut week: [Vec<Range>; 7] = Default::default();
    for d in [0, 1, 2, 3] {
        week[d] = vec![Range::parse("09:00-17:30").unwrap()];
    }
    week[4] = vec![Range::parse("09:00-13:00").unwrap(), Range::parse("14:00-17:30").unwrap()];
    let c = Calendar::business("office", Tz::Europe__London, week, BTreeSet::new()).unwrap();
    assert_eq!(deadline(&c, "2026-11-02T09:00:00Z", "83h"), "2026-11-13T17:30:00+00:00");
}
