//! Mail providers' own inbound webhooks: Mailgun (raw MIME in `body-mime`,
//! signed with an HMAC of timestamp and token), Postmark (inbound JSON,
//! basic authentication) and SendGrid's Inbound Parse (raw MIME in
//! `email`, basic authentication). Each translates its provider's request
//! into a raw message and an envelope and hands it to the one ingest path
//! (`Inbox::ingest`), as `POST /hooks/email` does; this file owns those
//! wire formats and nothing else.
//!
//! Every provider here counts any answer but 2xx as "retry later", so a
//! filed mail answers 200, and a request that cannot be a mail (a wrong
//! route setting) answers 4xx with the setting to change.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{Filed, filed};
use crate::http::AppState;
use crate::http::auth::HookAuth;
use crate::http::error::ApiError;
use crate::mail::Envelope;
use crate::notify::ids::constant_eq;
use crate::token::TokenRole;

/// What the Mailgun webhook needs: the HTTP webhook signing key and how
/// old a signed timestamp may be.
#[derive(Clone)]
pub struct MailgunHooks {
    pub signing_key: String,
    pub max_age: std::time::Duration,
}

impl MailgunHooks {
    /// Checks Mailgun's signature: the hex HMAC-SHA256, under the signing
    /// key, of `timestamp` followed by `token`; and that `timestamp` (Unix
    /// seconds) is within `max_age` of `now`, so an old request captured on
    /// the way cannot be played again later.
    pub fn verify(&self, timestamp: &str, token: &str, signature: &str, now: i64) -> Result<(), String> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.signing_key.as_bytes()) else {
            return Err("the signing key cannot key an HMAC".into());
        };
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        let expected = hex(&mac.finalize().into_bytes());
        if !constant_eq(expected.as_bytes(), signature.to_ascii_lowercase().as_bytes()) {
            return Err("the signature does not match the timestamp and token under the signing key".into());
        }
        let Ok(at) = timestamp.parse::<i64>() else {
            return Err(format!("timestamp {timestamp:?} is not Unix seconds"));
        };
        let age = now.abs_diff(at);
        if age > self.max_age.as_secs() {
            return Err(format!(
                "timestamp {at} is {age} s from now, more than [email] mailgun_max_age ({} s): refused as a replay",
                self.max_age.as_secs()
            ));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A form's fields as bytes, from either encoding a provider may use:
/// `application/x-www-form-urlencoded`, or `multipart/form-data` (Mailgun
/// sends that when the mail has attachments; SendGrid always). Values stay
/// bytes: a raw message need not be UTF-8.
async fn form_fields(state: &AppState, request: Request) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("the multipart body cannot be read: {e}")))?;
        let mut fields = Vec::new();
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => return Err(ApiError::new(e.status(), format!("the multipart body cannot be read: {e}"))),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let value = field
                .bytes()
                .await
                .map_err(|e| ApiError::new(e.status(), format!("form field {name:?} cannot be read: {e}")))?;
            fields.push((name, value.to_vec()));
        }
        Ok(fields)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("the body cannot be read: {e}")))?;
        Ok(url_decoded(&body))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {content_type:?}: post a form (multipart/form-data or application/x-www-form-urlencoded)"
            ),
        ))
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded to bytes (`+` is a
/// space, `%XX` a byte), repeated names kept.
fn url_decoded(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let decode = |s: &[u8]| -> Vec<u8> {
        let plus: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&plus).collect()
    };
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (String::from_utf8_lossy(&decode(name)).into_owned(), decode(value))
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

fn text_field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    field(fields, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// Hands a raw message to the ingest path and answers 200 with what
/// became of it.
async fn ingest(state: &AppState, raw: &[u8], envelope: Envelope, source: &str) -> Result<Json<Filed>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("the message is empty"));
    }
    let (inbox, outcome) = state.inbox.ingest(raw, &envelope, source).await?;
    Ok(Json(filed(inbox, &outcome)))
}

fn may_post(auth: &HookAuth) -> Result<(), ApiError> {
    if matches!(auth.0.role, TokenRole::Integration | TokenRole::Admin) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "a mail webhook needs an integration or admin token"))
    }
}

/// A mail from a Mailgun route whose action is `forward("https://…/hooks/email/mailgun")`
/// with the raw message: Mailgun posts the raw MIME in `body-mime` when the
/// route's URL ends in `mime`, so give this route as
/// `…/hooks/email/mailgun?mime` or set the route to store-and-notify raw
/// MIME. Signed by Mailgun (`timestamp`, `token`, `signature` under the HTTP
/// webhook signing key in the variable `[email] mailgun_signing_key_env`
/// names); a bad or stale signature is 403. 200 means filed (or kept and
/// flagged); anything else makes Mailgun retry.
#[utoipa::path(post, path = "/hooks/email/mailgun",
    request_body(content = String, content_type = "multipart/form-data", description = "Mailgun's form: body-mime, timestamp, token, signature, sender, recipient"),
    responses((status = 200, body = Filed), (status = 400, description = "no body-mime: the route does not post raw MIME"),
        (status = 403, description = "bad or stale signature"), (status = 404, description = "Mailgun is not configured"),
        (status = 413, description = "larger than the mail webhooks' limit"), (status = 503, description = "not stored; retry")))]
pub async fn mailgun(State(state): State<AppState>, request: Request) -> Result<Json<Filed>, ApiError> {
    let Some(mailgun) = state.mailgun.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Mailgun is not configured: set [email] mailgun_signing_key_env to the variable holding the signing key",
        ));
    };
    let fields = form_fields(&state, request).await?;
    let sig = |name| text_field(&fields, name).unwrap_or_default();
    if let Err(why) = mailgun.verify(sig("timestamp"), sig("token"), sig("signature"), state.clock.now().timestamp()) {
        tracing::warn!(%why, "refused a Mailgun post");
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("Mailgun signature: {why}")));
    }
    let Some(raw) = field(&fields, "body-mime") else {
        return Err(ApiError::bad_request(
            "no body-mime field: Mailgun posts the raw message only when the route's URL ends in \"mime\" \
             (forward(\"https://HOST/hooks/email/mailgun?mime\"))",
        ));
    };
    let envelope = Envelope {
        from: text_field(&fields, "sender").map(str::to_owned),
        to: text_field(&fields, "recipient")
            .map(|r| r.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect())
            .unwrap_or_default(),
    };
    ingest(&state, raw, envelope, "mailgun").await
}

/// A mail from SendGrid's Inbound Parse with "POST the raw, full MIME
/// message" ticked: the raw message in `email`, the SMTP envelope as JSON
/// in `envelope`. Give the URL with an integration token as the password
/// (`https://tocsin:TOKEN@HOST/hooks/email/sendgrid`).
#[utoipa::path(post, path = "/hooks/email/sendgrid",
    request_body(content = String, content_type = "multipart/form-data", description = "Inbound Parse's raw form: email, envelope"),
    responses((status = 200, body = Filed), (status = 400, description = "no email field: raw MIME is not ticked"),
        (status = 401, description = "no or bad credentials"), (status = 403, description = "not an integration token"),
        (status = 413, description = "larger than the mail webhooks' limit"), (status = 503, description = "not stored; retry")))]
pub async fn sendgrid(
    State(state): State<AppState>,
    auth: HookAuth,
    request: Request,
) -> Result<Json<Filed>, ApiError> {
    may_post(&auth)?;
    let fields = form_fields(&state, request).await?;
    let Some(raw) = field(&fields, "email") else {
        return Err(ApiError::bad_request(
            "no email field: tick \"POST the raw, full MIME message\" in SendGrid's Inbound Parse settings",
        ));
    };
    #[derive(Deserialize, Default)]
    struct SendgridEnvelope {
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        to: Vec<String>,
    }
    let envelope: SendgridEnvelope =
        text_field(&fields, "envelope").and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
    ingest(&state, raw, Envelope { from: envelope.from, to: envelope.to }, "sendgrid").await
}

/// Postmark's inbound JSON (the fields Tocsin reads).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PostmarkInbound {
    #[serde(default)]
    from: String,
    #[serde(default)]
    from_full: Option<PostmarkAddress>,
    #[serde(default)]
    to_full: Vec<PostmarkAddress>,
    #[serde(default)]
    cc_full: Vec<PostmarkAddress>,
    #[serde(default)]
    reply_to: String,
    #[serde(default)]
    original_recipient: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    date: String,
    /// Postmark's own id of the message.
    #[serde(default, rename = "MessageID")]
    message_id: String,
    #[serde(default)]
    text_body: String,
    #[serde(default)]
    html_body: String,
    #[serde(default)]
    headers: Vec<PostmarkHeader>,
    #[serde(default)]
    attachments: Vec<PostmarkAttachment>,
    /// The raw message, when the inbound stream's "Include raw email
    /// content in JSON payload" is on.
    #[serde(default)]
    raw_email: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
struct PostmarkAddress {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
struct PostmarkHeader {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
struct PostmarkAttachment {
    #[serde(default)]
    name: String,
    /// Base64.
    content: String,
    #[serde(default)]
    content_type: String,
}

/// Headers the rebuilt message writes itself, so they are not copied from
/// Postmark's list.
const REBUILT: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

impl PostmarkInbound {
    /// The message as raw MIME: Postmark's `RawEmail` when the stream
    /// sends it, else rebuilt from the parsed fields, keeping every header
    /// Postmark lists (`Message-ID`, `In-Reply-To`, `References`,
    /// `Auto-Submitted`, `List-Id`, … — threading and loop rules read
    /// them) and the attachments.
    pub fn raw(&self) -> Result<Vec<u8>, String> {
        if let Some(raw) = self.raw_email.as_deref().filter(|r| !r.is_empty()) {
            return Ok(raw.as_bytes().to_vec());
        }
        use mail_builder::MessageBuilder;
        use mail_builder::headers::address::Address;
        use mail_builder::headers::raw::Raw;
        let address =
            |a: &PostmarkAddress| Address::new_address((!a.name.is_empty()).then(|| a.name.clone()), a.email.clone());
        let from = match &self.from_full {
            Some(a) if !a.email.is_empty() => address(a),
            _ => Address::new_address(None::<String>, self.from.clone()),
        };
        let mut message = MessageBuilder::new().from(from).subject(self.subject.clone());
        if !self.to_full.is_empty() {
            message = message.to(Address::new_list(self.to_full.iter().map(address).collect()));
        } else if !self.original_recipient.is_empty() {
            message = message.to(Address::new_address(None::<String>, self.original_recipient.clone()));
        }
        if !self.cc_full.is_empty() {
            message = message.cc(Address::new_list(self.cc_full.iter().map(address).collect()));
        }
        if !self.reply_to.is_empty() {
            message = message.header("Reply-To", Raw::new(self.reply_to.clone()));
        }
        if !self.date.is_empty() {
            message = message.header("Date", Raw::new(self.date.clone()));
        }
        let mut has_message_id = false;
        for h in &self.headers {
            let name = h.name.trim();
            if name.is_empty() || name.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control()) {
                continue;
            }
            if REBUILT.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            has_message_id |= name.eq_ignore_ascii_case("message-id");
            // A value may not carry a line break of its own: that would
            // start a header Postmark did not list.
            let value = h.value.replace(['\r', '\n'], " ");
            message = message.header(name.to_owned(), Raw::new(value));
        }
        if !has_message_id && !self.message_id.is_empty() {
            // Postmark's id is the same on its retries, so a retried post
            // is found a duplicate.
            message = message.header("Message-ID", Raw::new(format!("<{}@inbound.postmarkapp.com>", self.message_id)));
        }
        if !self.text_body.is_empty() || self.html_body.is_empty() {
            message = message.text_body(self.text_body.clone());
        }
        if !self.html_body.is_empty() {
            message = message.html_body(self.html_body.clone());
        }
        use base64::Engine as _;
        for a in &self.attachments {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.content.trim())
                .map_err(|e| format!("attachment {:?}: Content is not base64: {e}", a.name))?;
            let content_type =
                if a.content_type.is_empty() { "application/octet-stream".to_owned() } else { a.content_type.clone() };
            message = message.attachment(content_type, a.name.clone(), bytes);
        }
        message.write_to_vec().map_err(|e| format!("the message cannot be written: {e}"))
    }
}

/// A mail from Postmark's inbound webhook (JSON). Give the URL with an
/// integration token as the password
/// (`https://tocsin:TOKEN@HOST/hooks/email/postmark`), and tick "Include raw
/// email content in JSON payload" so the message (and its DKIM signature)
/// arrives as sent; without it the message is rebuilt from Postmark's
/// fields.
#[utoipa::path(post, path = "/hooks/email/postmark", request_body(content = PostmarkInbound, content_type = "application/json"),
    responses((status = 200, body = Filed), (status = 400, description = "not Postmark's inbound JSON"),
        (status = 401, description = "no or bad credentials"), (status = 403, description = "not an integration token"),
        (status = 413, description = "larger than the mail webhooks' limit"), (status = 503, description = "not stored; retry")))]
pub async fn postmark(
    State(state): State<AppState>,
    auth: HookAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Filed>, ApiError> {
    may_post(&auth)?;
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !json.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "post Postmark's inbound JSON (application/json)",
        ));
    }
    let inbound: PostmarkInbound = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not Postmark's inbound JSON: {e}")))?;
    let raw = inbound.raw().map_err(ApiError::bad_request)?;
    let from = inbound
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("return-path"))
        .map(|h| h.value.trim().trim_start_matches('<').trim_end_matches('>').to_owned());
    let to = if inbound.original_recipient.is_empty() { Vec::new() } else { vec![inbound.original_recipient.clone()] };
    ingest(&state, &raw, Envelope { from, to }, "postmark").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &str, timestamp: &str, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    #[test]
    fn mailgun_signatures_are_checked_with_their_age() {
        let hooks = MailgunHooks { signing_key: "key-1".into(), max_age: std::time::Duration::from_secs(300) };
        let sig = signed("key-1", "1700000000", "tok");
        assert_eq!(hooks.verify("1700000000", "tok", &sig, 1_700_000_100), Ok(()));
        assert_eq!(hooks.verify("1700000000", "tok", &sig.to_uppercase(), 1_700_000_100), Ok(()));
        assert!(hooks.verify("1700000000", "tok", &sig, 1_700_000_301).unwrap_err().contains("replay"));
        assert!(hooks.verify("1700000000", "tok2", &sig, 1_700_000_000).unwrap_err().contains("does not match"));
        let other = signed("key-2", "1700000000", "tok");
        assert!(hooks.verify("1700000000", "tok", &other, 1_700_000_000).is_err());
        assert!(hooks.verify("1700000000", "tok", "", 1_700_000_000).is_err());
    }

    #[test]
    fn url_encoded_values_stay_bytes() {
        let f = url_decoded(b"a=1+2%0D%0A&body-mime=%FF%00x&flag&=v");
        assert_eq!(f[0], ("a".into(), b"1 2\r\n".to_vec()));
        assert_eq!(f[1], ("body-mime".into(), vec![0xff, 0, b'x']));
        assert_eq!(f[2], ("flag".into(), vec![]));
        assert_eq!(f[3], ("".into(), b"v".to_vec()));
    }

    #[test]
    fn a_postmark_header_cannot_smuggle_another() {
        let inbound: PostmarkInbound = serde_json::from_value(serde_json::json!({
            "From": "a@acme.com", "Subject": "x", "TextBody": "hi", "MessageID": "m1",
            "Headers": [{"Name": "X-Test", "Value": "1\r\nAuto-Submitted: no"}, {"Name": "Bad Name", "Value": "v"}]
        }))
        .unwrap();
        let raw = String::from_utf8(inbound.raw().unwrap()).unwrap();
        assert!(raw.contains("X-Test: 1  Auto-Submitted: no\r\n"), "{raw}");
        assert!(!raw.contains("Bad Name"), "{raw}");
        assert!(raw.contains("Message-ID: <m1@inbound.postmarkapp.com>"), "{raw}");
    }
}
