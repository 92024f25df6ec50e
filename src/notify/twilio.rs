//! SMS through Twilio's Messages API, and Twilio's webhook signatures.
//!
//! A thin client of our own on reqwest rather than the `twilio` crate: that
//! crate hard-codes Twilio's host (so tests cannot point it at a fake), sits
//! on hyper 0.14 with OpenSSL, and drops the query string when it checks
//! webhook signatures. This one takes its base URL from `[sms]
//! twilio_api_base`.
//!
//! Sending an SMS is not idempotent at Twilio (a repeated POST sends a
//! second message), so a page whose send was interrupted is first looked up
//! in Twilio's message log ([`Twilio::find_sent`]) before it is sent again.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::{Channel, Message, SendError};

/// A Twilio account that sends from one number.
#[derive(Clone)]
pub struct Twilio {
    pub http: reqwest::Client,
    /// `https://api.twilio.com`, or a test double.
    pub base: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    /// Where Twilio posts delivery status; `?page=ID` is appended.
    pub status_callback: Option<String>,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio")
            .field("base", &self.base)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

#[derive(Debug, Deserialize)]
struct Problem {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Listed {
    sid: String,
    body: Option<String>,
    date_created: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    messages: Vec<Listed>,
}

impl Twilio {
    fn messages_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base.trim_end_matches('/'), self.account_sid)
    }

    /// Sends `body` to `to`; returns the message SID. 429 and 5xx are
    /// temporary; other 4xx (an invalid number, say) are permanent.
    pub async fn send(&self, to: &str, body: &str, page: i64) -> Result<String, SendError> {
        let mut form = vec![("To", to.to_owned()), ("From", self.from.clone()), ("Body", body.to_owned())];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", format!("{cb}?page={page}")));
        }
        let response = self
            .http
            .post(self.messages_url())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::Temporary(format!("Twilio unreachable: {e}")))?;
        let status = response.status();
        if status.is_success() {
            let created: Created =
                response.json().await.map_err(|e| SendError::Temporary(format!("Twilio answered oddly: {e}")))?;
            return Ok(created.sid);
        }
        let problem: Problem = response.json().await.unwrap_or(Problem { code: None, message: None });
        let why = format!(
            "Twilio {}{}: {}",
            status.as_u16(),
            problem.code.map_or_else(String::new, |c| format!(" (error {c})")),
            problem.message.unwrap_or_else(|| "no message".into())
        );
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Temporary(why))
        } else {
            Err(SendError::Permanent(why))
        }
    }

    /// The SID of a message with exactly `body` sent to `to` since `since`,
    /// if Twilio's log has one: what an interrupted send may have left.
    pub async fn find_sent(&self, to: &str, body: &str, since: DateTime<Utc>) -> Result<Option<String>, SendError> {
        let day = since.format("%Y-%m-%d").to_string();
        let response = self
            .http
            .get(self.messages_url())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .query(&[("To", to), ("From", self.from.as_str()), ("DateSent>", day.as_str()), ("PageSize", "100")])
            .send()
            .await
            .map_err(|e| SendError::Temporary(format!("Twilio unreachable: {e}")))?;
        if !response.status().is_success() {
            return Err(SendError::Temporary(format!("Twilio message log: {}", response.status())));
        }
        let page: Page = response.json().await.map_err(|e| SendError::Temporary(format!("Twilio message log: {e}")))?;
        let recent = |m: &Listed| {
            m.date_created
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .is_none_or(|d| d.with_timezone(&Utc) >= since - TimeDelta::minutes(1))
        };
        Ok(page.messages.into_iter().find(|m| m.body.as_deref() == Some(body) && recent(m)).map(|m| m.sid))
    }
}

#[async_trait]
impl Channel for Twilio {
    async fn send(&self, msg: &Message) -> Result<Option<String>, SendError> {
        self.send(&msg.to, &msg.body.text, msg.page_id).await.map(Some)
    }

    async fn find_sent(&self, msg: &Message, since: DateTime<Utc>) -> Result<Option<String>, SendError> {
        self.find_sent(&msg.to, &msg.body.text, since).await
    }
}

/// Twilio's signature of a form POST to `url`: HMAC-SHA1 under the auth
/// token of the URL followed by each parameter's name and value, sorted by
/// name then value, in base64.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD.encode(signed(auth_token, url, params).finalize().into_bytes())
}

/// The HMAC of `url` and the sorted parameters, ready to finish or verify.
fn signed(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The forms of `url` Twilio may have signed: as given, and with the
/// scheme's default port added or removed.
fn url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else { return forms };
    let default = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return forms,
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if let Some(host) = authority.strip_suffix(default) {
        forms.push(format!("{scheme}://{host}{path}"));
    } else if !authority.contains(':') {
        forms.push(format!("{scheme}://{authority}{default}{path}"));
    }
    forms
}

/// Checks `X-Twilio-Signature` of a form POST in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else { return false };
    // verify_slice compares in constant time.
    url_forms(url).iter().any(|u| signed(auth_token, u, params).verify_slice(&given).is_ok())
}

/// Checks the signature of a JSON POST: Twilio signs the URL alone, which
/// carries `bodySHA256`, the hex SHA-256 of the body.
pub fn verify_json(auth_token: &str, url: &str, body: &[u8], header: &str) -> bool {
    use sha2::{Digest, Sha256};
    let expected = hex::encode(Sha256::digest(body));
    let claimed = url.split_once('?').and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("bodySHA256=")));
    let Some(claimed) = claimed else { return false };
    if !super::ids::constant_eq(claimed.as_bytes(), expected.as_bytes()) {
        return false;
    }
    verify(auth_token, url, &[], header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    // The example of Twilio's "Webhooks security" documentation; the value
    // was checked against `RequestValidator` of the official `twilio`
    // Python package (9.13.0), which also accepts it with `:443` added.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn documented() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn the_documented_example_signs_as_twilio_says() {
        assert_eq!(signature(TOKEN, URL, &documented()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify(TOKEN, URL, &documented(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn any_change_of_one_byte_is_refused() {
        let good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert!(!verify(TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=3", &documented(), good));
        let mut p = documented();
        p[2].1 = "1235".into();
        assert!(!verify(TOKEN, URL, &p, good));
        assert!(!verify(TOKEN, URL, &documented(), "1/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify("12346", URL, &documented(), good));
        assert!(!verify(TOKEN, URL, &documented(), "not base64!"));
    }

    #[test]
    fn the_url_may_carry_or_omit_the_default_port() {
        let p = documented();
        let with_port = signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &p);
        assert!(verify(TOKEN, URL, &p, &with_port));
        let without = signature(TOKEN, URL, &p);
        assert!(verify(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &p, &without));
    }

    #[test]
    fn repeated_keys_sort_by_value_too() {
        let a = params(&[("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x")]);
        let b = params(&[("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b")]);
        assert_eq!(signature(TOKEN, URL, &a), signature(TOKEN, URL, &b));
    }

    #[test]
    fn json_bodies_are_checked_by_their_hash() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(body))
        };
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        let sig = signature(TOKEN, &url, &[]);
        assert!(verify_json(TOKEN, &url, body, &sig));
        assert!(!verify_json(TOKEN, &url, b"{\"property\": \"other\"}", &sig));
    }
}
