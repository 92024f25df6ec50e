//! Whether an inbound mail's From can be believed (`[email] verify`),
//! computed once per mail by the inbox and handed to the decisions as a
//! [`Verification`].
//!
//! `"dkim"`: the DKIM signatures are checked here with `mail-auth`, their
//! keys looked up in DNS through a [`TxtLookup`] (the system resolver in
//! production; tests hand over the records), each lookup bounded by
//! `[email] dns_timeout`. A DNS failure is DKIM's `temperror`: the mail
//! counts as unverified this time, and is filed all the same (never lost).
//! `"authentication-results"`: the core reads the headers a trusted MTA
//! added ([`crate::mail::auth::trusted_results`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::resolver::ToFqdn;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};

use crate::mail::Mail;
use crate::mail::auth::{Verification, VerifyMode, aligned, domain_of, trusted_results};

/// At most this many DKIM signatures of one mail are looked at (each costs
/// a DNS lookup; a mail with hundreds must not buy hundreds).
const MAX_SIGNATURES: usize = 5;

/// Why a TXT lookup found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsFailure {
    /// The name has no TXT record (NXDOMAIN, or no data): a `permerror`.
    NotFound,
    /// The resolver failed or timed out: a `temperror`.
    Temporary(String),
}

/// Looks up TXT records: the seam where tests feed DKIM keys.
#[async_trait]
pub trait TxtLookup: Send + Sync {
    /// The TXT records at `name` (no trailing dot), each with its strings
    /// joined.
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsFailure>;
}

/// The system's resolver (`/etc/resolv.conf`).
pub struct SystemDns(MessageAuthenticator);

impl SystemDns {
    pub fn new() -> Result<Self, String> {
        MessageAuthenticator::new_system_conf()
            .map(SystemDns)
            .map_err(|e| format!("[email] verify = \"dkim\" needs the system's DNS resolver: {e}"))
    }
}

#[async_trait]
impl TxtLookup for SystemDns {
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsFailure> {
        let name = mail_auth::hickory_resolver::proto::rr::Name::from_str_relaxed(name)
            .map_err(|e| DnsFailure::Temporary(e.to_string()))?;
        let lookup = self.0.resolver().txt_lookup(name).await.map_err(|e| match mail_auth::Error::from(e) {
            mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_)) => DnsFailure::NotFound,
            other => DnsFailure::Temporary(other.to_string()),
        })?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                mail_auth::hickory_resolver::proto::rr::RData::TXT(txt) => Some(txt.txt_data.concat()),
                _ => None,
            })
            .collect())
    }
}

/// Fixed TXT records by name: for tests, and for a key published nowhere
/// else.
#[derive(Debug, Clone, Default)]
pub struct StaticDns(pub HashMap<String, Vec<String>>);

#[async_trait]
impl TxtLookup for StaticDns {
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsFailure> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match self.0.get(&name) {
            Some(records) => Ok(records.iter().map(|r| r.as_bytes().to_vec()).collect()),
            None => Err(DnsFailure::NotFound),
        }
    }
}

/// The keys of one mail, looked up before `mail-auth` verifies: it asks
/// only this cache, and a name missing from it (an ATPS or report record)
/// answers "not found", so the verifier never reaches a resolver of its own.
struct Fetched(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for Fetched {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Some(map.get(name).cloned().unwrap_or_else(not_found))
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(name)
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

fn not_found() -> Txt {
    Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::InvalidRecordType))
}

/// Checks mail as `[email] verify` says.
pub struct Verifier {
    pub mode: VerifyMode,
    /// `[email] trusted_authserv_id`.
    pub authserv_id: String,
    pub dns: Arc<dyn TxtLookup>,
    /// Each DNS lookup, and the whole DKIM check, at most this long.
    pub timeout: Duration,
}

impl Verifier {
    /// A verifier that checks nothing (`verify = "none"`).
    pub fn none() -> Self {
        Verifier {
            mode: VerifyMode::None,
            authserv_id: String::new(),
            dns: Arc::new(StaticDns::default()),
            timeout: Duration::from_secs(5),
        }
    }

    /// The verdict on `mail` (read from `raw`).
    pub async fn check(&self, raw: &[u8], mail: &Mail) -> Verification {
        if self.mode == VerifyMode::None {
            return Verification::NotChecked;
        }
        let Some(from) = domain_of(&mail.from) else {
            return Verification::Unverified { why: "the From address has no domain".into() };
        };
        match self.mode {
            VerifyMode::None => Verification::NotChecked,
            VerifyMode::AuthenticationResults => trusted_results(&mail.auth_results, &self.authserv_id, &from),
            VerifyMode::Dkim => match tokio::time::timeout(self.timeout * 2, self.dkim(raw, &from)).await {
                Ok(v) => v,
                Err(_) => Verification::Unverified { why: "the DKIM check timed out (temperror)".into() },
            },
        }
    }

    async fn dkim(&self, raw: &[u8], from: &str) -> Verification {
        let unverified = |why: String| Verification::Unverified { why };
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return unverified("the message cannot be read for DKIM".into());
        };
        if message.dkim_headers.is_empty() {
            return unverified(format!("no DKIM signature (From domain {from})"));
        }
        let fetched = Fetched(Mutex::new(HashMap::new()));
        let mut temp = Vec::new();
        for header in message.dkim_headers.iter().take(MAX_SIGNATURES) {
            let sig = &header.header;
            let name = format!("{}._domainkey.{}", sig.s, sig.d).to_ascii_lowercase();
            let key: Box<str> = name.to_fqdn().into_owned().into_boxed_str();
            if fetched.0.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&key) {
                continue;
            }
            let txt = match tokio::time::timeout(self.timeout, self.dns.txt(&name)).await {
                Ok(Ok(records)) => {
                    records.iter().find_map(|r| DomainKey::parse(r).ok()).map(Txt::from).unwrap_or_else(not_found)
                }
                Ok(Err(DnsFailure::NotFound)) => not_found(),
                Ok(Err(DnsFailure::Temporary(e))) => {
                    tracing::warn!(%name, error = %e, "DKIM key lookup failed");
                    temp.push(format!("{name}: {e}"));
                    Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::Resolver(e)))
                }
                Err(_) => {
                    tracing::warn!(%name, "DKIM key lookup timed out");
                    temp.push(format!("{name}: timed out"));
                    Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::Resolver("timed out".into())))
                }
            };
            fetched.0.lock().unwrap_or_else(|p| p.into_inner()).insert(key, txt);
        }
        // Never asked: every name is answered from `fetched`.
        let Ok(authenticator) = MessageAuthenticator::new_cloudflare() else {
            return unverified("the DKIM verifier cannot start".into());
        };
        let outputs = authenticator.verify_dkim(Parameters::new(&message).with_txt_cache(&fetched)).await;
        let mut seen = Vec::new();
        for output in outputs.iter().take(MAX_SIGNATURES) {
            let Some(sig) = output.signature() else { continue };
            let d = sig.d.to_ascii_lowercase();
            match output.result() {
                DkimResult::Pass if aligned(&d, from) => {
                    return Verification::Verified { how: format!("DKIM d={d}") };
                }
                DkimResult::Pass => seen.push(format!("d={d} passes but does not align with {from}")),
                DkimResult::TempError(e) => seen.push(format!("d={d}: temperror ({e})")),
                DkimResult::Fail(e) | DkimResult::PermError(e) | DkimResult::Neutral(e) => {
                    seen.push(format!("d={d}: {e}"))
                }
                DkimResult::None => seen.push(format!("d={d}: none")),
            }
        }
        if seen.is_empty() && !temp.is_empty() {
            seen = temp.into_iter().map(|t| format!("temperror ({t})")).collect();
        }
        unverified(format!("no DKIM signature aligned with {from} verifies: {}", seen.join("; ")))
    }
}
