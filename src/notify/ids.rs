//! Identifiers Tocsin signs: the Message-IDs of its emails, so a reply can
//! be traced to its case and nobody can forge one to join another
//! customer's case.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::case::CaseNumber;

/// The secret that signs Message-IDs (and reply addresses). From the
/// environment variable named by `[secrets] reply_key_env`; without it,
/// a random key generated once and kept in the database.
#[derive(Clone)]
pub struct ReplyKey(Vec<u8>);

impl std::fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyKey(…)")
    }
}

impl ReplyKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    /// A truncated HMAC-SHA256 of `parts`, as 16 hex digits.
    pub fn sign(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes keys of any length")
        };
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b"\0");
        }
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// The Message-ID of the email for outbox row `page` of `case`, without
    /// angle brackets: the same on every attempt, unguessable without the key.
    pub fn message_id(&self, case: CaseNumber, page: i64, domain: &str) -> String {
        let sig = self.sign(&["message-id", &case.0.to_string(), &page.to_string()]);
        format!("tocsin.{}.{page}.{sig}@{domain}", case.0)
    }
}

/// Why `key` is a weak reply key, if it is (`tocsin check` warns): shorter
/// than 32 bytes, or obviously low in entropy (few distinct characters, or
/// a short pattern repeated), so it could be guessed and reply addresses
/// minted with it.
pub fn weakness(key: &[u8]) -> Option<String> {
    if key.len() < 32 {
        return Some(format!("it is {} bytes long; use at least 32 (e.g. `openssl rand -hex 32`)", key.len()));
    }
    let distinct = key.iter().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < 10 {
        return Some(format!("it uses only {distinct} distinct characters; use a random one (`openssl rand -hex 32`)"));
    }
    if let Some(period) = (1..=key.len() / 2).find(|p| key.chunks(*p).all(|c| key.starts_with(c))) {
        return Some(format!("it repeats a pattern of {period} characters; use a random one (`openssl rand -hex 32`)"));
    }
    None
}

/// Equality of two secrets in time that does not depend on where they
/// differ.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ReplyKey {
    /// The signed reply address of `person` for `case`:
    /// `<local>+<case>.<token>@<domain>`, so a reply is traced to both
    /// without trusting its From header.
    pub fn reply_address(&self, local: &str, case: CaseNumber, person: &str, domain: &str) -> String {
        format!("{local}+{}.{}@{domain}", case.0, self.reply_token(case, person))
    }

    /// The signed address a customer's answer to a reply goes to:
    /// `<local>+<case>.c<token>@<domain>`. It threads into the case even when
    /// the customer's mail program drops `In-Reply-To`, and proves, as a
    /// signed Message-ID does, that the sender saw mail Tocsin sent. Its
    /// token is signed apart from the engineers' (`c` and another label),
    /// so it never carries a command.
    pub fn customer_address(&self, local: &str, case: CaseNumber, domain: &str) -> String {
        format!("{local}+{}.{}@{domain}", case.0, self.customer_token(case))
    }

    /// The token of a customer's reply address.
    pub fn customer_token(&self, case: CaseNumber) -> String {
        format!("c{}", &self.sign(&["customer-reply", &case.0.to_string()])[..12])
    }

    /// The token of a reply address: a truncated HMAC of case and person.
    pub fn reply_token(&self, case: CaseNumber, person: &str) -> String {
        self.sign(&["reply", &case.0.to_string(), person])[..12].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_depend_on_the_key() {
        let a = ReplyKey::new(b"one");
        assert_eq!(a.message_id(CaseNumber(1042), 7, "x.com"), a.message_id(CaseNumber(1042), 7, "x.com"));
        assert_ne!(
            a.message_id(CaseNumber(1042), 7, "x.com"),
            ReplyKey::new(b"two").message_id(CaseNumber(1042), 7, "x.com")
        );
        assert_ne!(a.message_id(CaseNumber(1042), 7, "x.com"), a.message_id(CaseNumber(1043), 7, "x.com"));
    }

    #[test]
    fn short_and_patterned_keys_are_weak() {
        assert!(weakness(b"secret").unwrap().contains("6 bytes"));
        assert!(weakness(&[b'a'; 64]).unwrap().contains("distinct"));
        assert!(weakness(b"0123456789abcdef0123456789abcdef0123456789abcdef").unwrap().contains("pattern"));
        assert_eq!(weakness(b"9f2c41d07be85a3e6c1f0d94b27a58e3c06d1b7f4e29a853d0c6e1b74f9a2d58"), None);
    }
}
