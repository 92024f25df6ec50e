//! Whether a mail's From can be believed: the verdict of `[email] verify`
//! and the two pure parts behind it, domain alignment and reading the
//! `Authentication-Results` header a trusted MTA added (RFC 8601).
//!
//! The DKIM check itself (crypto and DNS) runs in the inbox service; this
//! module only judges what it found. Pure: strings in, facts out.

/// How inbound mail is checked (`[email] verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// No check: the From header is taken as written (the default).
    #[default]
    None,
    /// Tocsin checks the DKIM signatures itself.
    Dkim,
    /// An MTA in front checked; Tocsin reads its `Authentication-Results`.
    AuthenticationResults,
}

impl VerifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::None => "none",
            VerifyMode::Dkim => "dkim",
            VerifyMode::AuthenticationResults => "authentication-results",
        }
    }
}

/// What the check of one mail found: computed once per mail by the inbox,
/// handed to the decisions as a fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// `verify = "none"`: nothing was checked, and nothing is refused.
    NotChecked,
    /// The From domain is vouched for; `how` says by what ("DKIM d=acme.com").
    Verified { how: String },
    /// It is not; `why` says what was missing or failed, for the timeline
    /// and the answer.
    Unverified { why: String },
}

impl Verification {
    /// Why mail with this verdict may not speak for its From address (give
    /// an engineer's command, join a case by its subject tag), if it may not.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Verification::Unverified { why } => Some(why),
            Verification::NotChecked | Verification::Verified { .. } => None,
        }
    }
}

/// The domain of a mail address, lower-cased (`None` without an `@`).
pub fn domain_of(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// Whether a signature's domain `signer` (DKIM `d=`) vouches for mail From
/// `from_domain`: the same domain, or a parent of it (`d=acme.com` for
/// `From: ops@eu.acme.com`). This is DMARC's relaxed alignment where the
/// signer is the organisational domain or the From domain itself, without
/// the Public Suffix List: a sibling (`d=evil.acme.com` for `acme.com`) or a
/// child (`d=eu.acme.com` for `acme.com`) does not align. A parent that is
/// a public suffix (`d=com`) would, but nobody can publish a key in
/// `_domainkey.com`.
pub fn aligned(signer: &str, from_domain: &str) -> bool {
    let signer = signer.trim().trim_end_matches('.').to_ascii_lowercase();
    let from = from_domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if signer.is_empty() || from.is_empty() {
        return false;
    }
    // A single label (`d=com`, `d=localhost`) never aligns.
    if !signer.contains('.') {
        return false;
    }
    from == signer || from.strip_suffix(&signer).is_some_and(|rest| rest.ends_with('.'))
}

/// One `method=result` of an `Authentication-Results` header, with its
/// properties (`header.d=acme.com` as `("header.d", "acme.com")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// Lower-cased, without a version (`dkim`, `dmarc`, `spf`).
    pub method: String,
    /// Lower-cased (`pass`, `fail`, `none`, …).
    pub result: String,
    /// `ptype.property` lower-cased, the value as written (unquoted).
    pub props: Vec<(String, String)>,
}

impl MethodResult {
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// An `Authentication-Results` header (RFC 8601 §2.2), read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Lower-cased.
    pub authserv_id: String,
    pub results: Vec<MethodResult>,
}

/// The lexical pieces of a header value: comments `(…)` are dropped
/// (nested, with `\` escapes), quoted strings kept whole as one token, and
/// `;`, `=` and `/` stand alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Semi,
    Equals,
    Slash,
}

fn tokens(value: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                flush(&mut word, &mut out);
                let mut depth = 1usize;
                while depth > 0 {
                    match chars.next()? {
                        '\\' => {
                            chars.next()?;
                        }
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            '"' => {
                flush(&mut word, &mut out);
                let mut quoted = String::new();
                loop {
                    match chars.next()? {
                        '\\' => quoted.push(chars.next()?),
                        '"' => break,
                        other => quoted.push(other),
                    }
                }
                out.push(Token::Word(quoted));
            }
            ';' => {
                flush(&mut word, &mut out);
                out.push(Token::Semi);
            }
            '=' => {
                flush(&mut word, &mut out);
                out.push(Token::Equals);
            }
            '/' => {
                flush(&mut word, &mut out);
                out.push(Token::Slash);
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    Some(out)
}

/// Reads one `Authentication-Results` value (without the field name):
/// `authserv-id [version] ( "; none" / *( ";" resinfo ) )`. `None` when it
/// does not follow the grammar (unbalanced comment or quote, no id, a
/// resinfo without `method=result`): such a header vouches for nothing.
pub fn parse_authentication_results(value: &str) -> Option<AuthResults> {
    let tokens = tokens(value)?;
    let mut parts = tokens.split(|t| *t == Token::Semi);
    let head = parts.next()?;
    let authserv_id = match head {
        [Token::Word(id)] | [Token::Word(id), Token::Word(_)] => id.to_ascii_lowercase(),
        _ => return None,
    };
    let mut results = Vec::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        if let [Token::Word(w)] = part
            && w.eq_ignore_ascii_case("none")
            && results.is_empty()
        {
            continue;
        }
        let mut rest = part;
        // method [ "/" version ] "=" result
        let method = match rest {
            [Token::Word(m), Token::Slash, Token::Word(_), Token::Equals, Token::Word(r), tail @ ..]
            | [Token::Word(m), Token::Equals, Token::Word(r), tail @ ..] => {
                rest = tail;
                (m.to_ascii_lowercase(), r.to_ascii_lowercase())
            }
            _ => return None,
        };
        let mut props = Vec::new();
        while !rest.is_empty() {
            match rest {
                // reasonspec: "reason=" value
                [Token::Word(name), Token::Equals, Token::Word(v), tail @ ..] => {
                    props.push((name.to_ascii_lowercase(), v.clone()));
                    rest = tail;
                }
                // A property with an empty value (`header.d=`) vouches for
                // nothing; it is skipped.
                [Token::Word(_), Token::Equals, tail @ ..] => rest = tail,
                _ => return None,
            }
        }
        results.push(MethodResult { method: method.0, result: method.1, props });
    }
    Some(AuthResults { authserv_id, results })
}

/// The verdict of the `Authentication-Results` headers a mail carries, as
/// runs of adjacent headers, topmost first ([`crate::mail::Mail`]). The
/// MTA in front adds its results on top of the message, above everything
/// the sender wrote; so only the first run that holds a header with the
/// `trusted` authserv-id is read, and in it only those headers. One the
/// sender forged further down, even with the trusted id, is below the
/// MTA's own (separated from it by at least the MTA's `Received` line) and
/// is never read. A pass is `dkim=pass` with `header.d` (or the domain of
/// `header.i`) aligned with `from_domain`, or `dmarc=pass` with
/// `header.from` equal to it.
pub fn trusted_results(runs: &[Vec<String>], trusted: &str, from_domain: &str) -> Verification {
    let trusted = trusted.trim().to_ascii_lowercase();
    let ours = |value: &String| parse_authentication_results(value).filter(|ar| ar.authserv_id == trusted);
    let run = runs.iter().find(|run| run.iter().any(|v| ours(v).is_some()));
    let seen = run.is_some();
    let mut found = Vec::new();
    for ar in run.into_iter().flatten().filter_map(ours) {
        for r in &ar.results {
            let pass = r.result == "pass";
            let how = match r.method.as_str() {
                "dkim" => {
                    let signer =
                        r.prop("header.d").map(str::to_owned).or_else(|| r.prop("header.i").and_then(domain_of_auid));
                    match signer {
                        Some(d) if pass && aligned(&d, from_domain) => {
                            return Verification::Verified { how: format!("{trusted}: dkim=pass header.d={d}") };
                        }
                        Some(d) => format!("dkim={} header.d={d}", r.result),
                        None => format!("dkim={}", r.result),
                    }
                }
                "dmarc" => {
                    let domain = r.prop("header.from").map(|d| d.trim_end_matches('.').to_ascii_lowercase());
                    match domain {
                        Some(d) if pass && d == from_domain => {
                            return Verification::Verified { how: format!("{trusted}: dmarc=pass header.from={d}") };
                        }
                        Some(d) => format!("dmarc={} header.from={d}", r.result),
                        None => format!("dmarc={}", r.result),
                    }
                }
                _ => continue,
            };
            found.push(how);
        }
    }
    let why = if !seen {
        format!("no Authentication-Results from {trusted} on top of the message")
    } else if found.is_empty() {
        format!("{trusted} reported no DKIM or DMARC result")
    } else {
        format!("{trusted} reported {} (none passes for {from_domain})", found.join(", "))
    };
    Verification::Unverified { why }
}

/// The domain of a DKIM agent identifier (`header.i=@acme.com`,
/// `header.i=ops@acme.com`).
fn domain_of_auid(i: &str) -> Option<String> {
    domain_of(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_accepts_the_domain_and_its_parents_only() {
        assert!(aligned("acme.com", "acme.com"));
        assert!(aligned("ACME.com.", "acme.com"));
        assert!(aligned("acme.com", "eu.acme.com"));
        assert!(!aligned("eu.acme.com", "acme.com"), "a child does not vouch for its parent");
        assert!(!aligned("evil.acme.com", "eu.acme.com"), "nor a sibling");
        assert!(!aligned("cme.com", "acme.com"), "a suffix that is not a label boundary");
        assert!(!aligned("com", "acme.com"), "a single label never aligns");
        assert!(!aligned("", "acme.com"));
        assert!(!aligned("acme.com", ""));
        assert!(!aligned("evil.com", "acme.com"));
    }

    #[test]
    fn a_header_is_read_with_comments_quotes_and_versions() {
        let ar = parse_authentication_results(
            "mx.example.com 1; dkim=pass (2048-bit key; secure) header.d=acme.com header.i=@acme.com \
             header.s=sel header.b=\"AbC=\"; spf=pass smtp.mailfrom=ops@acme.com; \
             dmarc/1=pass (p=reject) header.from=acme.com",
        )
        .unwrap();
        assert_eq!(ar.authserv_id, "mx.example.com");
        assert_eq!(ar.results.len(), 3);
        assert_eq!(ar.results[0].method, "dkim");
        assert_eq!(ar.results[0].result, "pass");
        assert_eq!(ar.results[0].prop("header.d"), Some("acme.com"));
        assert_eq!(ar.results[0].prop("header.b"), Some("AbC="));
        assert_eq!(ar.results[2].method, "dmarc");
        assert_eq!(ar.results[2].prop("header.from"), Some("acme.com"));
        let none = parse_authentication_results("mx.example.com; none").unwrap();
        assert!(none.results.is_empty());
    }

    #[test]
    fn a_malformed_header_is_not_read() {
        for bad in [
            "",
            "; dkim=pass header.d=acme.com",
            "mx.example.com; dkim=pass (unclosed header.d=acme.com",
            "mx.example.com; dkim=pass header.d=\"acme.com",
            "mx.example.com; dkim header.d=acme.com",
            "mx.example.com extra words; dkim=pass",
        ] {
            assert_eq!(parse_authentication_results(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_trusted_aligned_pass_verifies() {
        let v = |headers: &[&str], from: &str| {
            trusted_results(&[headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()], "mx.example.com", from)
        };
        assert!(matches!(
            v(&["mx.example.com; dkim=pass header.d=acme.com"], "acme.com"),
            Verification::Verified { .. }
        ));
        assert!(matches!(
            v(&["MX.Example.com; dmarc=pass header.from=acme.com"], "acme.com"),
            Verification::Verified { .. }
        ));
        assert!(matches!(
            v(&["mx.example.com; dkim=pass header.i=@acme.com"], "eu.acme.com"),
            Verification::Verified { .. }
        ));
        for (headers, from) in [
            (&["mx.evil.com; dkim=pass header.d=acme.com"][..], "acme.com"),
            (&["mx.example.com; dkim=pass header.d=evil.com"], "acme.com"),
            (&["mx.example.com; dkim=fail header.d=acme.com"], "acme.com"),
            (&["mx.example.com; dmarc=pass header.from=evil.com"], "acme.com"),
            (&["mx.example.com; spf=pass smtp.mailfrom=acme.com"], "acme.com"),
            (&["mx.example.com; none"], "acme.com"),
            (&[], "acme.com"),
        ] {
            let verdict = v(headers, from);
            assert!(verdict.refusal().is_some(), "{headers:?}: {verdict:?}");
        }
        assert_eq!(Verification::NotChecked.refusal(), None);
    }

    #[test]
    fn a_forged_header_below_the_mtas_own_is_not_read() {
        let runs = vec![
            vec!["mx.example.com; dkim=none".to_owned()],
            vec!["mx.example.com; dkim=pass header.d=acme.com".to_owned()],
        ];
        assert!(trusted_results(&runs, "mx.example.com", "acme.com").refusal().is_some());
        // Another host's results above ours do not hide ours.
        let runs = vec![
            vec!["mx.elsewhere.org; dkim=fail".to_owned()],
            vec!["mx.example.com; dkim=pass header.d=acme.com".to_owned()],
        ];
        assert!(trusted_results(&runs, "mx.example.com", "acme.com").refusal().is_none());
    }
}
