//! Attachments and raw messages of a case, as downloads (issue 14): the one
//! place the API and the dashboard get them from, with the headers that
//! keep a hostile file from running in the dashboard's origin.

use crate::case::CaseNumber;
use crate::mail::attachments;
use crate::store::{Store, StoreError};
use crate::token::{TokenInfo, TokenRole};

/// Types a browser could run or render as a page: served as plain bytes.
const ACTIVE: [&str; 8] = [
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "text/javascript",
    "application/javascript",
    "application/x-shockwave-flash",
];

/// A file to hand over as a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Download {
    /// The response headers: always a download (`Content-Disposition:
    /// attachment`, RFC 6266, with an ASCII fallback name and the UTF-8 one),
    /// never sniffed, sandboxed should a browser render it anyway, and
    /// active types sent as opaque bytes.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let content_type = if ACTIVE.contains(&self.content_type.as_str()) {
            "application/octet-stream".to_owned()
        } else {
            self.content_type.clone()
        };
        let ascii: String = self
            .name
            .chars()
            .map(|c| if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\') { c } else { '_' })
            .collect();
        let encoded: String = self
            .name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        vec![
            ("content-type", content_type),
            ("content-disposition", format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")),
            ("x-content-type-options", "nosniff".to_owned()),
            ("content-security-policy", "sandbox; default-src 'none'".to_owned()),
            ("cache-control", "private, no-store".to_owned()),
        ]
    }
}

/// Attachment `id` of case `number`, decoded from its raw message; `None`
/// when the case has no such attachment.
pub async fn attachment(store: &dyn Store, number: CaseNumber, id: i64) -> Result<Option<Download>, StoreError> {
    let Some(a) = store.attachment(number, id).await? else { return Ok(None) };
    let Some(record) = store.inbox(a.inbox_id).await? else { return Ok(None) };
    let part = a.part;
    let bytes = tokio::task::spawn_blocking(move || attachments::bytes(&record.raw, part))
        .await
        .map_err(|e| StoreError::Corrupt(format!("decoding attachment {id}: {e}")))?;
    Ok(bytes.map(|bytes| Download { name: a.name, content_type: a.content_type, bytes }))
}

/// Whether `viewer` may read raw messages: managers and admins (a raw
/// message holds every header and address, more than a case shows).
pub fn may_read_raw(viewer: &TokenInfo) -> bool {
    matches!(viewer.role, TokenRole::Manager | TokenRole::Admin)
}

/// The raw message of inbox row `id`, if it was filed on case `number`.
pub async fn message(store: &dyn Store, number: CaseNumber, id: i64) -> Result<Option<Download>, StoreError> {
    let Some(record) = store.inbox(id).await? else { return Ok(None) };
    if record.case != Some(number) {
        return Ok(None);
    }
    Ok(Some(Download {
        name: format!("case-{}-message-{id}.eml", number.0),
        content_type: "message/rfc822".to_owned(),
        bytes: record.raw,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_file_goes_out_as_opaque_bytes_to_download() {
        let d = Download { name: "évil\".html".into(), content_type: "text/html".into(), bytes: vec![] };
        let h: std::collections::BTreeMap<_, _> = d.headers().into_iter().collect();
        assert_eq!(h["content-type"], "application/octet-stream");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h["content-disposition"].starts_with("attachment; filename=\"_vil_.html\""),
            "{}",
            h["content-disposition"]
        );
        assert!(h["content-disposition"].ends_with("filename*=UTF-8''%C3%A9vil%22.html"));
        let pdf = Download { name: "r.pdf".into(), content_type: "application/pdf".into(), bytes: vec![] };
        assert_eq!(pdf.headers()[0].1, "application/pdf");
    }
}
