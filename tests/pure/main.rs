//! Tests without a daemon, a socket or a database: properties of the
//! calendar and schedule arithmetic, hand-worked DST answers, and the
//! reviewed snapshots of templates and reply stripping.
//!
//! One binary for all of them, so the suite links once instead of once per
//! file; each file is a module.

mod calendar_props;
mod replies;
mod schedule_props;
mod templates;
mod time_zones;

/// A property's settings: `cases` random cases, run after the failures
/// saved in `regressions` (committed; proptest adds each new one it finds).
/// Left alone, proptest would keep them for a module of this binary in
/// `tests/proptest-regressions/`, away from the module.
fn property(cases: u32, regressions: &'static str) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence};
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::with_cases(cases)
    }
}
