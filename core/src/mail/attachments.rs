//! Attachments of customer mail: what a message carries, listed when it is
//! filed, and the bytes of one, decoded from the raw message kept in the
//! inbox. The bytes are never copied elsewhere: the raw message is the one
//! record (committed before the SMTP 250, in the database, so a backup of
//! the database holds them and a crash loses none).

use mail_parser::{MessageParser, MimeHeaders};

/// The largest attachment kept, decoded; larger ones are not listed (the
/// raw message still holds them for managers, at
/// `GET /api/v1/cases/{n}/messages/{id}`).
pub const MAX_ATTACHMENT: usize = 10 * 1024 * 1024;

/// The longest file name kept, in characters.
const MAX_NAME: usize = 200;

/// One attachment of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its position among the message's attachments (mail-parser's order).
    pub part: u32,
    /// A file name safe to offer for download: no path, no control or
    /// quote characters.
    pub name: String,
    /// `type/subtype`, lower-case; `application/octet-stream` when unknown.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
}

/// `name` as a download may carry it: the last path component, without
/// control characters, quotes or backslashes, at most [`MAX_NAME`]
/// characters; `attachment-<n>` when nothing is left.
pub fn safe_name(name: Option<&str>, part: u32) -> String {
    let base = name.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String =
        base.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | ';')).take(MAX_NAME).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    if cleaned.is_empty() { format!("attachment-{}", part + 1) } else { cleaned }
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .and_then(|ct| {
            let (t, s) = (ct.ctype().to_ascii_lowercase(), ct.subtype()?.to_ascii_lowercase());
            (token(&t) && token(&s)).then(|| format!("{t}/{s}"))
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// The attachments of `raw` worth keeping: at most [`MAX_ATTACHMENT`]
/// each. Empty for a message that does not parse.
pub fn list(raw: &[u8]) -> Vec<Attachment> {
    let Some(message) = MessageParser::default().parse(raw) else { return Vec::new() };
    message
        .attachments()
        .enumerate()
        .filter(|(_, p)| p.len() <= MAX_ATTACHMENT)
        .map(|(i, p)| {
            let part = i as u32;
            Attachment {
                part,
                name: safe_name(p.attachment_name(), part),
                content_type: content_type(p),
                size: p.len() as u64,
            }
        })
        .collect()
}

/// The decoded bytes of attachment `part` of `raw`, if it has one.
pub fn bytes(raw: &[u8], part: u32) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let p = message.attachment(part)?;
    (p.len() <= MAX_ATTACHMENT).then(|| p.contents().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "From: ops@acme.com\r\nTo: help@support.example.com\r\nSubject: logs\r\nMessage-ID: <a@acme.com>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
--b\r\nContent-Type: application/octet-stream; name=\"dump.bin\"\r\nContent-Disposition: attachment; filename=\"../../etc/dump.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Disposition: attachment; filename=\"evil\\\".html\"\r\n\r\n<script>alert(1)</script>\r\n--b--\r\n";

    #[test]
    fn attachments_are_listed_with_safe_names_and_their_bytes_decoded() {
        let list = list(RAW.as_bytes());
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(
            (list[0].name.as_str(), list[0].content_type.as_str(), list[0].size),
            ("dump.bin", "application/octet-stream", 4)
        );
        assert_eq!(bytes(RAW.as_bytes(), 0), Some(vec![0, 1, 2, 255]));
        assert_eq!(list[1].content_type, "text/html");
        assert!(!list[1].name.contains('"'), "{}", list[1].name);
        assert_eq!(bytes(RAW.as_bytes(), 2), None);
        assert_eq!(bytes(b"not a message", 0), None);
    }

    #[test]
    fn names_lose_paths_quotes_and_control_characters() {
        assert_eq!(safe_name(Some("C:\\Users\\x\\report.pdf"), 0), "report.pdf");
        assert_eq!(safe_name(Some("a\r\nb\".txt"), 0), "ab.txt");
        assert_eq!(safe_name(Some("..."), 1), "attachment-2");
        assert_eq!(safe_name(None, 0), "attachment-1");
    }
}
