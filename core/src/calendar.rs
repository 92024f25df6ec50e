//! Business-hours calendars and the SLA clock arithmetic on them.
//!
//! Working time is the set of instants whose local wall-clock time falls in a
//! range of that weekday (start inclusive, end exclusive) on a day that is not
//! a holiday. So an hour that DST skips holds no working time, and an hour
//! that DST repeats counts twice. A range that crosses midnight belongs to
//! the day on which it starts.
//!
//! The method: for each local day, split a generous UTC window around it into
//! stretches of constant UTC offset; within a stretch of offset `o`, the local
//! range `[s, e)` is exactly the UTC interval `[s - o, e - o)`. Intersecting
//! the two gives the day's working intervals in UTC, exact to the second,
//! with no special cases for gaps and overlaps.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Minutes in a day.
const DAY: u32 = 24 * 60;
/// How many days a deadline search may look ahead before giving up. A valid
/// calendar has working time every week, so this bounds only absurd targets.
const SEARCH_DAYS: i64 = 366 * 20;

/// One working range of a weekday, in minutes after local midnight. `end` may
/// pass 1440 when the range crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub end: u32,
}

impl Range {
    /// Parses `"09:00-17:30"`. `24:00` and an end of `23:59` mean the end of
    /// the day; an end at or before the start crosses midnight.
    pub fn parse(s: &str) -> Result<Self, String> {
        let fix = "write ranges as \"HH:MM-HH:MM\", e.g. \"09:00-17:30\"";
        let (a, b) = s.split_once('-').ok_or_else(|| format!("range {s:?} has no '-': {fix}"))?;
        let start = parse_clock(a.trim()).ok_or_else(|| format!("range {s:?}: bad start time: {fix}"))?;
        let mut end = parse_clock(b.trim()).ok_or_else(|| format!("range {s:?}: bad end time: {fix}"))?;
        if start >= DAY {
            return Err(format!("range {s:?} starts at 24:00; start the range at 00:00 of the next day instead"));
        }
        if end == DAY - 1 {
            end = DAY;
        }
        if end == start {
            return Err(format!("range {s:?} is empty; for a whole day write \"00:00-24:00\""));
        }
        if end < start {
            end += DAY;
        }
        Ok(Self { start, end })
    }
}

/// `"HH:MM"` as minutes after midnight, `24:00` included.
pub fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    match (h, m) {
        (24, 0) => Some(DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// A day off: one date, or the same month and day every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holiday {
    Date(NaiveDate),
    Yearly { month: u32, day: u32 },
}

impl Holiday {
    /// Parses `"2026-12-25"` or a yearly `"12-25"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Self::Date(d));
        }
        let yearly = s.split_once('-').and_then(|(m, d)| {
            let (m, d) = (m.parse::<u32>().ok()?, d.parse::<u32>().ok()?);
            // 2024 is a leap year, so "02-29" is accepted.
            NaiveDate::from_ymd_opt(2024, m, d).map(|_| Self::Yearly { month: m, day: d })
        });
        yearly.ok_or_else(|| {
            format!("holiday {s:?} is not a date: write \"YYYY-MM-DD\" for one day or \"MM-DD\" for every year")
        })
    }
}

/// The days an iCalendar file (a public-holiday feed) marks: every day
/// covered by one of its events, `DTEND` exclusive (RFC 5545 §3.6.1), at
/// most 31 days an event.
pub fn holidays_from_ics(text: &str) -> Result<BTreeSet<NaiveDate>, String> {
    use icalendar::{CalendarComponent, Component};
    let cal: icalendar::Calendar = text.parse().map_err(|e| format!("not an iCalendar file: {e}"))?;
    let date = |d: icalendar::DatePerhapsTime| Some(d.date_naive());
    let mut days = BTreeSet::new();
    for component in &cal.components {
        let CalendarComponent::Event(event) = component else { continue };
        let Some(start) = event.get_start().and_then(date) else {
            return Err("an event has no usable DTSTART".into());
        };
        let end = event.get_end().and_then(date).filter(|e| *e > start).unwrap_or_else(|| start + TimeDelta::days(1));
        let mut day = start;
        while day < end && day < start + TimeDelta::days(31) {
            days.insert(day);
            day += TimeDelta::days(1);
        }
    }
    Ok(days)
}

/// A calendar in which SLA clocks run.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub name: String,
    pub tz: Tz,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Always,
    Hours {
        /// Ranges per weekday, Monday first, sorted by start.
        week: [Vec<Range>; 7],
        holidays: BTreeSet<Holiday>,
    },
}

impl Calendar {
    /// The built-in `24x7` calendar: every instant is working time.
    pub fn always() -> Self {
        Self { name: "24x7".into(), tz: Tz::UTC, shape: Shape::Always }
    }

    /// A business-hours calendar. Fails when ranges overlap (on the weekly
    /// wall clock, so a range crossing midnight may collide with the next
    /// day's) or when there is no working time at all.
    pub fn business(
        name: &str,
        tz: Tz,
        mut week: [Vec<Range>; 7],
        holidays: BTreeSet<Holiday>,
    ) -> Result<Self, String> {
        const WEEK: u32 = 7 * DAY;
        let mut spans: Vec<(u32, u32)> = Vec::new();
        for (day, ranges) in week.iter_mut().enumerate() {
            ranges.sort_by_key(|r| r.start);
            for r in ranges.iter() {
                let (s, e) = (day as u32 * DAY + r.start, day as u32 * DAY + r.end);
                if e <= WEEK {
                    spans.push((s, e));
                } else {
                    spans.push((s, WEEK));
                    spans.push((0, e - WEEK));
                }
            }
        }
        if spans.is_empty() {
            return Err(format!("calendar {name:?} has no working hours: add ranges under [calendar.{name}.hours]"));
        }
        spans.sort();
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                let at = |m: u32| {
                    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
                    format!("{} {:02}:{:02}", names[(m / DAY) as usize % 7], (m % DAY) / 60, m % 60)
                };
                return Err(format!(
                    "calendar {name:?} has overlapping ranges around {}: make each weekday's ranges disjoint (a range crossing midnight counts into the next day)",
                    at(pair[1].0)
                ));
            }
        }
        Ok(Self { name: name.to_owned(), tz, shape: Shape::Hours { week, holidays } })
    }

    /// True for the built-in always-on calendar.
    pub fn is_always(&self) -> bool {
        matches!(self.shape, Shape::Always)
    }

    /// The earliest instant at which the working time since `start` reaches
    /// `within`. `None` only if no such instant lies within twenty years.
    pub fn deadline(&self, start: DateTime<Utc>, within: TimeDelta) -> Option<DateTime<Utc>> {
        if within <= TimeDelta::zero() {
            return Some(start);
        }
        if self.is_always() {
            return start.checked_add_signed(within);
        }
        let mut left = within;
        let mut day = self.local_date(start).pred_opt()?;
        let mut spans = Vec::new();
        for _ in 0..SEARCH_DAYS {
            spans.clear();
            self.working_spans(day, &mut spans);
            for &(a, b) in &spans {
                if b <= start {
                    continue;
                }
                let a = a.max(start);
                let len = b - a;
                if left <= len {
                    return Some(a + left);
                }
                left -= len;
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// The earliest instant at or after `at` that is working time: `at`
    /// itself while working time runs. `None` only if there is none within
    /// the search horizon (a calendar whose every working day is a holiday).
    pub fn next_working(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_always() {
            return Some(at);
        }
        let mut day = self.local_date(at).pred_opt()?;
        let mut spans = Vec::new();
        for _ in 0..SEARCH_DAYS {
            spans.clear();
            self.working_spans(day, &mut spans);
            if let Some(&(a, _)) = spans.iter().find(|(_, b)| *b > at) {
                return Some(a.max(at));
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// The working time between `from` and `to` (zero when `to <= from`).
    pub fn working_time(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if to <= from {
            return TimeDelta::zero();
        }
        if self.is_always() {
            return to - from;
        }
        let mut total = TimeDelta::zero();
        let (Some(mut day), last) = (self.local_date(from).pred_opt(), self.local_date(to)) else {
            return total;
        };
        let mut spans = Vec::new();
        while day <= last {
            spans.clear();
            self.working_spans(day, &mut spans);
            for &(a, b) in &spans {
                let (a, b) = (a.max(from), b.min(to));
                if a < b {
                    total += b - a;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        total
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    fn is_holiday(holidays: &BTreeSet<Holiday>, day: NaiveDate) -> bool {
        holidays.contains(&Holiday::Date(day))
            || holidays.contains(&Holiday::Yearly { month: day.month(), day: day.day() })
    }

    /// Appends the UTC intervals of the working ranges that start on local
    /// `day`, in order.
    fn working_spans(&self, day: NaiveDate, out: &mut Vec<(DateTime<Utc>, DateTime<Utc>)>) {
        let Shape::Hours { week, holidays } = &self.shape else { return };
        let ranges = &week[day.weekday().num_days_from_monday() as usize];
        if ranges.is_empty() || Self::is_holiday(holidays, day) {
            return;
        }
        let midnight = NaiveDateTime::new(day, NaiveTime::MIN);
        // Offsets lie within -12h..+14h, so local [day, day + 2) lies inside
        // this UTC window; ranges end at most 48h after local midnight.
        let lo = midnight.and_utc() - TimeDelta::hours(15);
        let hi = midnight.and_utc() + TimeDelta::hours(48 + 15);
        let stretches = offset_stretches(self.tz, lo, hi);
        for r in ranges {
            let ls = midnight + TimeDelta::minutes(r.start.into());
            let le = midnight + TimeDelta::minutes(r.end.into());
            for &(sa, sb, off) in &stretches {
                let a = (ls - off).and_utc().max(sa);
                let b = (le - off).and_utc().min(sb);
                if a < b {
                    out.push((a, b));
                }
            }
        }
        out.sort();
    }
}

/// The UTC offset of `tz` at `at`.
fn offset_at(tz: Tz, at: DateTime<Utc>) -> TimeDelta {
    TimeDelta::seconds(tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc().into())
}

/// Splits `[lo, hi)` into stretches of constant UTC offset. Zones change
/// offset at most a few times a year, never twice within three hours, so
/// probing every three hours and bisecting a change to the second finds
/// every transition.
fn offset_stretches(tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>, TimeDelta)> {
    const PROBE: TimeDelta = TimeDelta::hours(3);
    let mut out = Vec::with_capacity(2);
    let mut start = lo;
    let mut off = offset_at(tz, lo);
    let mut probe = lo;
    while probe < hi {
        let next = (probe + PROBE).min(hi);
        let next_off = offset_at(tz, next);
        if next_off != off {
            // Invariant: offset at `a` is `off`, at `b` it is not.
            // Transitions fall on whole seconds, and so do the probes, so
            // halving in whole seconds lands `b` exactly on the change.
            let (mut a, mut b) = (probe, next);
            while b - a > TimeDelta::seconds(1) {
                let mid = a + TimeDelta::seconds((b - a).num_seconds() / 2);
                if offset_at(tz, mid) == off {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            out.push((start, b, off));
            start = b;
            off = offset_at(tz, b);
        }
        probe = next;
    }
    out.push((start, hi, off));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn week(entries: &[(usize, &str)]) -> [Vec<Range>; 7] {
        let mut w: [Vec<Range>; 7] = Default::default();
        for &(d, r) in entries {
            w[d].push(Range::parse(r).unwrap());
        }
        w
    }

    fn office() -> Calendar {
        let hours = [
            (0, "09:00-17:30"),
            (1, "09:00-17:30"),
            (2, "09:00-17:30"),
            (3, "09:00-17:30"),
            (4, "09:00-13:00"),
            (4, "14:00-17:30"),
        ];
        let holidays = ["2026-12-25", "2026-12-28"].iter().map(|h| Holiday::parse(h).unwrap()).collect();
        Calendar::business("office", chrono_tz::Europe::London, week(&hours), holidays).unwrap()
    }

    fn night() -> Calendar {
        Calendar::business("night", chrono_tz::America::Chicago, week(&[(5, "22:00-06:00")]), BTreeSet::new()).unwrap()
    }

    fn deadline_in_zone(c: &Calendar, from: &str, within: &str) -> String {
        let d = c.deadline(at(from), TimeDelta::from_std(humantime::parse_duration(within).unwrap()).unwrap()).unwrap();
        d.with_timezone(&c.tz).to_rfc3339()
    }

    #[test]
    fn the_next_working_instant_skips_nights_weekends_holidays_and_lunch() {
        let c = office();
        let next = |s: &str| c.next_working(at(s)).unwrap().to_rfc3339();
        // Inside working time: now.
        assert_eq!(next("2026-11-24T10:15:00Z"), "2026-11-24T10:15:00+00:00");
        // 02:00 on a Tuesday: 09:00 the same day.
        assert_eq!(next("2026-11-24T02:00:00Z"), "2026-11-24T09:00:00+00:00");
        // Friday lunch: 14:00.
        assert_eq!(next("2026-11-27T13:30:00Z"), "2026-11-27T14:00:00+00:00");
        // Friday evening: Monday 09:00.
        assert_eq!(next("2026-11-27T18:00:00Z"), "2026-11-30T09:00:00+00:00");
        // Christmas Eve evening: over the holiday, the weekend and the
        // second holiday to Tuesday the 29th.
        assert_eq!(next("2026-12-24T18:00:00Z"), "2026-12-29T09:00:00+00:00");
        // The Sunday clocks go forward: Monday 09:00 BST is 08:00 UTC.
        assert_eq!(next("2026-03-29T02:00:00Z"), "2026-03-30T08:00:00+00:00");
        // The end of a range is not working time.
        assert_eq!(next("2026-11-24T17:30:00Z"), "2026-11-25T09:00:00+00:00");
        assert_eq!(Calendar::always().next_working(at("2026-11-24T02:00:00Z")), Some(at("2026-11-24T02:00:00Z")));
    }

    #[test]
    fn product_examples_hold_to_the_second() {
        assert_eq!(deadline_in_zone(&office(), "2026-12-24T16:45:00+00:00", "2h"), "2026-12-29T10:15:00+00:00");
        assert_eq!(deadline_in_zone(&office(), "2026-03-27T12:30:00+00:00", "3h"), "2026-03-27T16:30:00+00:00");
        assert_eq!(deadline_in_zone(&office(), "2026-11-21T10:00:00+00:00", "1h 30m 30s"), "2026-11-23T10:30:30+00:00");
        assert_eq!(deadline_in_zone(&night(), "2026-03-07T23:00:00-06:00", "6h"), "2026-03-08T06:00:00-05:00");
        assert_eq!(deadline_in_zone(&night(), "2026-10-31T23:00:00-05:00", "7h"), "2026-11-01T05:00:00-06:00");
    }

    #[test]
    fn working_time_counts_the_repeated_hour_twice_and_the_skipped_hour_never() {
        let n = night();
        assert_eq!(
            n.working_time(at("2026-03-07T22:00:00-06:00"), at("2026-03-08T12:00:00-05:00")),
            TimeDelta::hours(7)
        );
        assert_eq!(
            n.working_time(at("2026-10-31T22:00:00-05:00"), at("2026-11-01T12:00:00-06:00")),
            TimeDelta::hours(9)
        );
    }

    #[test]
    fn working_time_inverts_deadline() {
        let c = office();
        let start = at("2026-12-24T16:45:00Z");
        for mins in [1, 45, 46, 120, 600, 6000] {
            let d = TimeDelta::minutes(mins);
            assert_eq!(c.working_time(start, c.deadline(start, d).unwrap()), d, "{mins} minutes");
        }
    }

    #[test]
    fn ranges_parse_with_end_of_day_and_midnight_crossing() {
        assert_eq!(Range::parse("09:00-17:30"), Ok(Range { start: 540, end: 1050 }));
        assert_eq!(Range::parse("00:00-24:00"), Ok(Range { start: 0, end: 1440 }));
        assert_eq!(Range::parse("08:00-23:59"), Ok(Range { start: 480, end: 1440 }));
        assert_eq!(Range::parse("22:00-06:00"), Ok(Range { start: 1320, end: 1800 }));
        assert!(Range::parse("09:00-09:00").is_err());
        assert!(Range::parse("9-17").is_err());
        assert!(Range::parse("09:00-25:00").is_err());
    }

    #[test]
    fn overlapping_ranges_are_refused_even_across_midnight() {
        let w = week(&[(0, "22:00-06:00"), (1, "05:00-09:00")]);
        assert!(Calendar::business("x", Tz::UTC, w, BTreeSet::new()).is_err());
        let w = week(&[(6, "22:00-06:00"), (0, "05:00-09:00")]);
        assert!(Calendar::business("x", Tz::UTC, w, BTreeSet::new()).is_err());
        assert!(Calendar::business("x", Tz::UTC, Default::default(), BTreeSet::new()).is_err());
    }

    #[test]
    fn holiday_feeds_give_every_day_their_events_cover() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
            BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260831\r\nSUMMARY:Summer bank holiday\r\nEND:VEVENT\r\n\
            END:VCALENDAR\r\n";
        let days: Vec<String> = holidays_from_ics(ics).unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(days, ["2026-08-31", "2026-12-25", "2026-12-26"]);
        assert!(holidays_from_ics("not a calendar").is_err());
    }

    #[test]
    fn yearly_holidays_close_the_day_every_year() {
        let holidays = [Holiday::parse("01-01").unwrap()].into_iter().collect();
        let all_days = week(&[
            (0, "00:00-24:00"),
            (1, "00:00-24:00"),
            (2, "00:00-24:00"),
            (3, "00:00-24:00"),
            (4, "00:00-24:00"),
            (5, "00:00-24:00"),
            (6, "00:00-24:00"),
        ]);
        let c = Calendar::business("x", Tz::UTC, all_days, holidays).unwrap();
        assert_eq!(c.deadline(at("2030-12-31T23:00:00Z"), TimeDelta::hours(2)).unwrap(), at("2031-01-02T01:00:00Z"));
    }
}
