//! Input limits every door enforces alike: the API, the dashboard, mail and
//! the CLI take the same text, so they refuse the same sizes.

/// Longest subject accepted, in characters (mail subjects are cut to it).
pub const MAX_SUBJECT: usize = 500;
/// Longest body, note or update kept for the timeline, in characters (a
/// raw mail is kept whole beside it).
pub const MAX_TEXT: usize = 100_000;
/// Longest reason for an on-call override, in characters.
pub const MAX_REASON: usize = 500;
/// Longest `Idempotency-Key` accepted, in bytes.
pub const MAX_REQUEST_KEY: usize = 255;
