//! Who is on call when: rotations in layers, and overrides above them all.
//!
//! Handoffs happen on the wall clock: the k-th handoff is the first
//! handoff's local date and time plus k shifts, added in local time, so a
//! daily 09:00 handoff stays at 09:00 across DST. A local time that DST skips
//! hands off at the first instant after the gap; one that DST repeats hands
//! off at its first occurrence.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use crate::people::PersonId;

/// A rotation's window of activity within each week, in the schedule's zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// Days on which a window starts.
    pub days: Vec<Weekday>,
    /// Minutes after midnight.
    pub from: u32,
    /// Minutes after midnight; at or before `from` the window crosses
    /// midnight and belongs to the day on which it starts.
    pub to: u32,
}

impl Active {
    fn contains(&self, local: NaiveDateTime) -> bool {
        let minute = local.hour() * 60 + local.minute();
        let today = self.days.contains(&local.weekday());
        if self.from < self.to {
            today && (self.from..self.to).contains(&minute)
        } else {
            let yesterday = self.days.contains(&local.weekday().pred());
            (today && minute >= self.from) || (yesterday && minute < self.to)
        }
    }
}

/// One rotation of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub members: Vec<PersonId>,
    pub shift: TimeDelta,
    /// The first handoff, on the schedule's wall clock.
    pub start: NaiveDateTime,
    pub active: Option<Active>,
}

/// A time-bounded replacement that wins over every layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub person: PersonId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A named on-call schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub tz: Tz,
    /// Later layers win where they are active.
    pub layers: Vec<Layer>,
}

impl Schedule {
    /// The person on call at `at`, given the overrides of this schedule.
    /// The latest-listed override active at `at` wins; then the last layer
    /// that is active and has started.
    pub fn on_call(&self, overrides: &[Override], at: DateTime<Utc>) -> Option<PersonId> {
        if let Some(o) = overrides.iter().rev().find(|o| o.start <= at && at < o.end) {
            return Some(o.person.clone());
        }
        let local = at.with_timezone(&self.tz).naive_local();
        self.layers.iter().rev().find_map(|layer| {
            if layer.active.as_ref().is_some_and(|a| !a.contains(local)) {
                return None;
            }
            let k = self.shift_index(layer, at)?;
            let n = layer.members.len() as i64;
            layer.members.get(k.rem_euclid(n) as usize).cloned()
        })
    }

    /// The first instant after `at` (and before `until`) at which the
    /// on-call answer changes.
    pub fn next_change(
        &self,
        overrides: &[Override],
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let now = self.on_call(overrides, at);
        let mut t = at;
        // The answer is constant between consecutive boundaries, so walking
        // them in order finds the first change.
        while t < until {
            let next = self.boundaries_after(overrides, t).into_iter().min()?;
            if next >= until {
                return None;
            }
            if self.on_call(overrides, next) != now {
                return Some(next);
            }
            t = next;
        }
        None
    }

    /// Who is on call from `from` to `to`, as consecutive spans
    /// `(start, end, person)`.
    pub fn spans(
        &self,
        overrides: &[Override],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>, Option<PersonId>)> {
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            let end = self.next_change(overrides, t, to).unwrap_or(to);
            out.push((t, end, self.on_call(overrides, t)));
            t = end;
        }
        out
    }

    /// Every instant after `t` at which some layer hands off, some active
    /// window opens or closes, or some override starts or ends: the only
    /// instants at which the answer can change. Only the nearest of each
    /// layer's are listed.
    fn boundaries_after(&self, overrides: &[Override], t: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = overrides.iter().flat_map(|o| [o.start, o.end]).filter(|b| *b > t).collect();
        for layer in &self.layers {
            let k = self.shift_index(layer, t).unwrap_or(-1);
            if let Some(h) = self.handoff(layer, k + 1).filter(|h| *h > t) {
                out.push(h);
            }
            if let Some(a) = &layer.active {
                let day = t.with_timezone(&self.tz).date_naive();
                let edges = (-1..=8)
                    .filter_map(|d| day.checked_add_signed(TimeDelta::days(d)))
                    .filter(|d| a.days.contains(&d.weekday()))
                    .flat_map(|d| {
                        let start = d.and_hms_opt(a.from / 60, a.from % 60, 0);
                        let end_day = if a.to <= a.from { d.succ_opt() } else { Some(d) };
                        let end = end_day.and_then(|e| e.and_hms_opt(a.to / 60, a.to % 60, 0));
                        [start, end]
                    });
                if let Some(edge) = edges.flatten().filter_map(|local| to_utc(self.tz, local)).filter(|e| *e > t).min()
                {
                    out.push(edge);
                }
            }
        }
        out
    }

    /// The instant of the k-th handoff of `layer`.
    pub fn handoff(&self, layer: &Layer, k: i64) -> Option<DateTime<Utc>> {
        let local = layer.start.checked_add_signed(layer.shift.checked_mul(k.try_into().ok()?)?)?;
        to_utc(self.tz, local)
    }

    /// The index of the shift running at `at`, or `None` before the first
    /// handoff.
    fn shift_index(&self, layer: &Layer, at: DateTime<Utc>) -> Option<i64> {
        let local = at.with_timezone(&self.tz).naive_local();
        let guess = (local - layer.start).num_seconds().div_euclid(layer.shift.num_seconds().max(1));
        // The guess is off by at most one near a handoff shifted by DST.
        let k = (guess - 1..=guess + 1).rev().find(|&k| self.handoff(layer, k).is_some_and(|h| h <= at))?;
        (k >= 0).then_some(k)
    }
}

/// The instant a local wall-clock time names: the first occurrence of a
/// repeated time, and for a skipped time the instant the gap ends.
pub fn to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // Walk forward to the first minute that exists (gaps are at most
            // a few hours), then back to where the gap ends, to the second.
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += TimeDelta::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    let after = t.with_timezone(&Utc);
                    let gap_end = (1..=60)
                        .map(|s| after - TimeDelta::seconds(s))
                        .take_while(|t| t.with_timezone(&tz).naive_local() >= local)
                        .last()
                        .unwrap_or(after);
                    return Some(gap_end);
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn id(s: &str) -> PersonId {
        s.parse().unwrap()
    }
    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn primary() -> Schedule {
        Schedule {
            name: "primary".into(),
            tz: chrono_tz::Europe::London,
            layers: vec![
                Layer {
                    members: vec![id("ana"), id("ben"), id("chen")],
                    shift: TimeDelta::weeks(1),
                    start: local("2026-11-02T09:00"),
                    active: None,
                },
                Layer {
                    members: vec![id("dana")],
                    shift: TimeDelta::days(1),
                    start: local("2026-11-02T18:00"),
                    active: Some(Active {
                        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
                        from: 18 * 60,
                        to: 8 * 60,
                    }),
                },
            ],
        }
    }

    #[test]
    fn weekly_rotation_hands_off_on_the_wall_clock() {
        let s = primary();
        assert_eq!(s.on_call(&[], at("2026-11-02T08:59:59Z")), None);
        assert_eq!(s.on_call(&[], at("2026-11-02T09:00:00Z")), Some(id("ana")));
        assert_eq!(s.on_call(&[], at("2026-11-09T09:00:00Z")), Some(id("ben")));
        assert_eq!(s.on_call(&[], at("2026-11-16T09:00:00Z")), Some(id("chen")));
        assert_eq!(s.on_call(&[], at("2026-11-23T09:00:00Z")), Some(id("ana")));
    }

    #[test]
    fn a_later_layer_wins_inside_its_window_that_crosses_midnight() {
        let s = primary();
        assert_eq!(s.on_call(&[], at("2026-11-03T18:00:00Z")), Some(id("dana")));
        // Tuesday's window runs into Wednesday morning.
        assert_eq!(s.on_call(&[], at("2026-11-04T07:59:00Z")), Some(id("dana")));
        assert_eq!(s.on_call(&[], at("2026-11-04T08:00:00Z")), Some(id("ana")));
        // Friday's window runs into Saturday; Saturday evening has none.
        assert_eq!(s.on_call(&[], at("2026-11-07T03:00:00Z")), Some(id("dana")));
        assert_eq!(s.on_call(&[], at("2026-11-07T19:00:00Z")), Some(id("ana")));
    }

    #[test]
    fn overrides_win_over_every_layer_while_they_last() {
        let s = primary();
        let o = [Override { person: id("erin"), start: at("2026-11-03T12:00:00Z"), end: at("2026-11-03T20:00:00Z") }];
        assert_eq!(s.on_call(&o, at("2026-11-03T19:00:00Z")), Some(id("erin")));
        assert_eq!(s.on_call(&o, at("2026-11-03T20:00:00Z")), Some(id("dana")));
    }

    #[test]
    fn a_daily_handoff_stays_at_nine_across_dst() {
        let s = Schedule {
            name: "d".into(),
            tz: chrono_tz::America::New_York,
            layers: vec![Layer {
                members: vec![id("a"), id("b")],
                shift: TimeDelta::days(1),
                start: local("2026-03-07T09:00"),
                active: None,
            }],
        };
        let layer = &s.layers[0];
        assert_eq!(s.handoff(layer, 1), Some(at("2026-03-08T09:00:00-04:00")));
        assert_eq!(s.on_call(&[], at("2026-03-08T08:59:59-04:00")), Some(id("a")));
        assert_eq!(s.on_call(&[], at("2026-03-08T09:00:00-04:00")), Some(id("b")));
    }

    #[test]
    fn a_handoff_in_a_dst_gap_happens_when_the_gap_ends() {
        assert_eq!(
            to_utc(chrono_tz::America::New_York, local("2026-03-08T02:30")),
            Some(at("2026-03-08T03:00:00-04:00"))
        );
        assert_eq!(
            to_utc(chrono_tz::America::New_York, local("2026-11-01T01:30")),
            Some(at("2026-11-01T01:30:00-04:00"))
        );
    }
}
