//! The outbox transport: each message becomes a file in a folder, an `.eml`
//! per email and a `.json` per SMS. The default set-up pages into a folder
//! anyone can watch, and tests read what was sent.
//!
//! A file is named after its outbox row (an SMS bundle after its first row,
//! with a digest of all its rows, so a bundle never takes the name of a
//! single page) and written to a temporary name, then renamed, so a watcher
//! never sees half a message. A send that was
//! interrupted (the daemon died before recording it) is looked up by that
//! name, so a page whose file exists is not written again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use serde_json::json;

use super::email::build_email;
use super::{Channel, Message, SendError};
use crate::people::ChannelKind;

/// Writes messages as files under `dir`.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    email_from: Mailbox,
    sms_from: String,
    /// Domain of the Message-IDs we mint.
    id_domain: String,
    /// One write at a time: concurrent creates and renames in one folder
    /// contend for its lock in the kernel and burn CPU spinning.
    writing: Arc<Mutex<()>>,
}

impl Outbox {
    pub fn new(dir: &Path, email_from: Mailbox, sms_from: &str, id_domain: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            email_from,
            sms_from: sms_from.to_owned(),
            id_domain: id_domain.to_owned(),
            writing: Arc::new(Mutex::new(())),
        }
    }

    fn file_name(msg: &Message) -> String {
        let about = msg.case.map_or_else(|| "notice".to_owned(), |n| format!("case{}", n.0));
        let ext = match msg.channel {
            ChannelKind::Email => "eml",
            ChannelKind::Sms => "json",
        };
        let bundle = if msg.bundled.is_empty() {
            String::new()
        } else {
            use sha2::Digest;
            let ids: Vec<String> =
                std::iter::once(msg.page_id).chain(msg.bundled.iter().copied()).map(|i| i.to_string()).collect();
            let digest = hex::encode(sha2::Sha256::digest(ids.join(",").as_bytes()));
            format!("-bundle{}-{}", ids.len(), &digest[..8])
        };
        format!("{:08}-{about}-{}{bundle}-{}.{ext}", msg.page_id, msg.kind.as_str(), msg.channel.as_str())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), SendError> {
        let temporary = |e: std::io::Error| SendError::Temporary(format!("outbox {}: {e}", self.dir.display()));
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::fs::create_dir_all(&self.dir).map_err(temporary)?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).map_err(temporary)?;
        std::fs::rename(&tmp, self.dir.join(name)).map_err(temporary)
    }
}

#[async_trait]
impl Channel for Outbox {
    async fn send(&self, msg: &Message) -> Result<Option<String>, SendError> {
        let (name, bytes) = match msg.channel {
            ChannelKind::Email => {
                (Self::file_name(msg), build_email(msg, &self.email_from, &self.id_domain)?.formatted())
            }
            ChannelKind::Sms => {
                let body = json!({
                    "to": msg.to,
                    "from": self.sms_from,
                    "body": msg.body.text,
                    "case": msg.case.map(|n| n.0),
                    "kind": msg.kind.as_str(),
                    "pages": std::iter::once(msg.page_id).chain(msg.bundled.iter().copied()).collect::<Vec<_>>(),
                });
                (
                    Self::file_name(msg),
                    serde_json::to_vec_pretty(&body).map_err(|e| SendError::Permanent(e.to_string()))?,
                )
            }
        };
        let this = self.clone();
        let n = name.clone();
        tokio::task::spawn_blocking(move || this.write(&n, &bytes))
            .await
            .map_err(|e| SendError::Temporary(format!("outbox writer stopped: {e}")))??;
        Ok(Some(name))
    }

    /// The file is renamed into place whole, so its presence means the
    /// interrupted send went out.
    async fn find_sent(&self, msg: &Message, _since: DateTime<Utc>) -> Result<Option<String>, SendError> {
        let name = Self::file_name(msg);
        match tokio::fs::try_exists(self.dir.join(&name)).await {
            Ok(true) => Ok(Some(name)),
            Ok(false) => Ok(None),
            Err(e) => Err(SendError::Temporary(format!("outbox {}: {e}", self.dir.display()))),
        }
    }
}
