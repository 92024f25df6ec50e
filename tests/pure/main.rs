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
