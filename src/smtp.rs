//! The inbound SMTP listener (RFC 5321): accepts mail for the configured
//! domains only, never relays, and answers 250 only after the raw message
//! is committed to the inbox. An adapter: it speaks SMTP and hands each
//! message to the inbox service.
//!
//! Shaped after tokio-rs/mini-redis: it takes an already-bound listener,
//! caps connections with a semaphore, stops through a watch channel, and
//! backs off on accept errors. Commands are parsed by `smtp-proto`; this
//! module owns the session, its limits and time-outs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::mail::Envelope;
use crate::service::inbox::Inbox;

/// What the listener needs to know.
pub struct SmtpServer {
    pub inbox: Arc<Inbox>,
    /// Lower-case domains we accept mail for.
    pub domains: Vec<String>,
    pub hostname: String,
    pub max_size: usize,
    pub max_recipients: usize,
    pub idle_timeout: Duration,
    pub session_timeout: Duration,
    pub max_connections: usize,
    /// Sessions one client address may hold at once (IPv6: one /64), so
    /// one address cannot take every slot.
    pub max_connections_per_ip: usize,
    /// Consecutive commands answered with an error before the session is
    /// ended with 421.
    pub max_errors: usize,
    /// STARTTLS, when a certificate is configured.
    pub tls: Option<TlsAcceptor>,
}

/// Loads a PEM certificate chain and key for STARTTLS.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How a plain-text session ended.
enum End<S> {
    Closed,
    /// The client asked for STARTTLS: continue on TLS.
    StartTls(S),
}

/// One mail transaction.
#[derive(Default)]
struct Transaction {
    helo: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

enum Phase {
    Command,
    Data(DataReceiver, Vec<u8>),
    /// Oversize: read to the end and throw away, then say 552.
    Discard(DummyDataReceiver),
}

impl SmtpServer {
    /// Serves connections from `listener` until `shutdown` turns true. Then
    /// it closes the listener (new connections are refused), lets each open
    /// session finish the message it is receiving (a DATA in progress still
    /// gets its 250 or 451), answers the others 421 (RFC 5321 §3.8: the
    /// sender keeps the mail and tries again), and returns when every
    /// session has ended. The caller bounds that wait (`[server]
    /// drain_timeout`).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let per_client = Arc::new(PerClient::default());
        let mut backoff = Duration::from_millis(10);
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let (mut stream, peer) = match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SMTP accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            let Some(claim) = per_client.claim(peer.ip(), self.max_connections_per_ip) else {
                tracing::info!(%peer, "SMTP connection refused: too many from this address");
                let _ =
                    stream.write_all(b"421 4.7.0 Too many connections from your address, try again later\r\n").await;
                continue;
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n").await;
                continue;
            };
            let server = self.clone();
            let stop = shutdown.clone();
            sessions.spawn(async move {
                let _slots = (permit, claim);
                let session = server.session(stream, peer, stop);
                if tokio::time::timeout(server.session_timeout, session).await.is_err() {
                    tracing::info!(%peer, "SMTP session timed out");
                }
            });
        }
        drop(listener);
        tracing::info!(sessions = sessions.len(), "SMTP listener closed; finishing open sessions");
        while sessions.join_next().await.is_some() {}
        tracing::info!("SMTP sessions finished");
    }

    async fn session(&self, mut stream: tokio::net::TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>) {
        let greeting = format!("220 {} ESMTP Tocsin\r\n", self.hostname);
        if stream.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        match self.conversation(&mut stream, peer, false, stop.clone()).await {
            End::StartTls(()) => {
                let Some(acceptor) = &self.tls else { return };
                match acceptor.accept(stream).await {
                    Ok(mut tls) => {
                        self.conversation(&mut tls, peer, true, stop).await;
                    }
                    Err(e) => tracing::info!(%peer, error = %e, "STARTTLS handshake failed"),
                }
            }
            End::Closed => {}
        }
    }

    fn ehlo(&self, secure: bool) -> String {
        let mut lines = vec![
            self.hostname.clone(),
            format!("SIZE {}", self.max_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.tls.is_some() && !secure {
            lines.push("STARTTLS".into());
        }
        lines.push("PIPELINING".into());
        let last = lines.len() - 1;
        lines.iter().enumerate().map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' })).collect()
    }

    fn accepts(&self, address: &str) -> bool {
        let domain = address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase());
        domain.is_some_and(|d| self.domains.contains(&d))
    }

    /// Runs commands until QUIT, a time-out, a closed socket, STARTTLS, or
    /// `stop` between two messages.
    async fn conversation<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
        secure: bool,
        mut stop: watch::Receiver<bool>,
    ) -> End<()> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut receiver = RequestReceiver::default();
        let mut phase = Phase::Command;
        let mut tx = Transaction::default();
        // Commands answered with an error in a row (RFC 5321 §4.3.2 lets a
        // server end a session it considers abusive with 421).
        let mut errors = 0;
        loop {
            // Between messages a draining server says goodbye at once; a
            // message being received is read to its end first.
            let between = matches!(phase, Phase::Command);
            let read = tokio::select! {
                biased;
                r = tokio::time::timeout(self.idle_timeout, stream.read(&mut buf)) => r,
                _ = async { drop(stop.wait_for(|s| *s).await) }, if between => {
                    let _ = stream.write_all(SHUTTING_DOWN.as_bytes()).await;
                    return End::Closed;
                }
            };
            let n = match read {
                Err(_) => {
                    let _ = stream.write_all(b"421 4.4.2 Idle for too long, closing\r\n").await;
                    return End::Closed;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return End::Closed,
                Ok(Ok(n)) => n,
            };
            let mut bytes = buf[..n].iter();
            let mut out = String::new();
            loop {
                match &mut phase {
                    Phase::Command => {
                        let before = out.len();
                        match receiver.ingest(&mut bytes) {
                            Ok(request) => {
                                let request = request.into_owned();
                                match self.command(request, &mut tx, secure, &mut out) {
                                    Next::Continue => {}
                                    Next::Data => phase = Phase::Data(DataReceiver::new(), Vec::new()),
                                    Next::Quit => {
                                        let _ = stream.write_all(out.as_bytes()).await;
                                        return End::Closed;
                                    }
                                    Next::StartTls => {
                                        // RFC 3207 §4.2: anything pipelined after
                                        // STARTTLS is discarded, never obeyed.
                                        let _ = stream.write_all(out.as_bytes()).await;
                                        return End::StartTls(());
                                    }
                                }
                            }
                            Err(ProtoError::NeedsMoreData { .. }) => break,
                            Err(ProtoError::UnknownCommand) => out += "500 5.5.1 Unknown command\r\n",
                            Err(ProtoError::ResponseTooLong) => out += "500 5.5.2 Line too long\r\n",
                            Err(ProtoError::InvalidSenderAddress) => out += "501 5.1.7 Bad sender address\r\n",
                            Err(ProtoError::InvalidRecipientAddress) => out += "501 5.1.3 Bad recipient address\r\n",
                            Err(e) => out += &format!("501 5.5.4 Syntax error: {e:?}\r\n"),
                        }
                        if out.len() > before {
                            errors = if out[before..].starts_with('5') { errors + 1 } else { 0 };
                        }
                        if errors >= self.max_errors {
                            tracing::info!(%peer, errors, "SMTP session ended: too many errors in a row");
                            out += TOO_MANY_ERRORS;
                            let _ = stream.write_all(out.as_bytes()).await;
                            return End::Closed;
                        }
                    }
                    Phase::Data(data, message) => {
                        let done = data.ingest(&mut bytes, message);
                        if message.len() > self.max_size {
                            let dummy = DummyDataReceiver::new_data(data);
                            phase = Phase::Discard(dummy);
                            continue;
                        }
                        if !done {
                            break;
                        }
                        let message = std::mem::take(message);
                        phase = Phase::Command;
                        out += &self.deliver(message, &mut tx, peer, secure).await;
                    }
                    Phase::Discard(dummy) => {
                        if !dummy.ingest(&mut bytes) {
                            break;
                        }
                        phase = Phase::Command;
                        tx.from = None;
                        tx.to.clear();
                        out += &format!("552 5.3.4 Message too big: the limit is {} bytes\r\n", self.max_size);
                    }
                }
                if bytes.as_slice().is_empty() {
                    break;
                }
            }
            let draining = *stop.borrow();
            if draining && matches!(phase, Phase::Command) {
                // The message just received has its answer; no more.
                out += SHUTTING_DOWN;
                let _ = stream.write_all(out.as_bytes()).await;
                return End::Closed;
            }
            if !out.is_empty() && stream.write_all(out.as_bytes()).await.is_err() {
                return End::Closed;
            }
        }
    }

    fn command(&self, request: Request<String>, tx: &mut Transaction, secure: bool, out: &mut String) -> Next {
        match request {
            Request::Ehlo { host } | Request::Lhlo { host } => {
                *tx = Transaction { helo: Some(host), ..Transaction::default() };
                *out += &self.ehlo(secure);
            }
            Request::Helo { host } => {
                *tx = Transaction { helo: Some(host), ..Transaction::default() };
                *out += &format!("250 {}\r\n", self.hostname);
            }
            Request::Mail { from } => {
                if tx.helo.is_none() {
                    *out += "503 5.5.1 Say EHLO first\r\n";
                } else if tx.from.is_some() {
                    *out += "503 5.5.1 Sender already given\r\n";
                } else if from.size > self.max_size {
                    *out += &format!("552 5.3.4 Message too big: the limit is {} bytes\r\n", self.max_size);
                } else {
                    tx.from = Some(from.address.to_ascii_lowercase());
                    *out += "250 2.1.0 Sender OK\r\n";
                }
            }
            Request::Rcpt { to } => {
                if tx.from.is_none() {
                    *out += "503 5.5.1 Need MAIL first\r\n";
                } else if !self.accepts(&to.address) {
                    *out += "550 5.7.1 Relaying denied: this server accepts mail only for its own domains\r\n";
                } else if tx.to.len() >= self.max_recipients {
                    *out += "452 4.5.3 Too many recipients\r\n";
                } else {
                    tx.to.push(to.address.to_ascii_lowercase());
                    *out += "250 2.1.5 Recipient OK\r\n";
                }
            }
            Request::Data => {
                if tx.to.is_empty() {
                    *out += "503 5.5.1 No valid recipients\r\n";
                } else {
                    *out += "354 End data with <CR><LF>.<CR><LF>\r\n";
                    return Next::Data;
                }
            }
            Request::Rset => {
                tx.from = None;
                tx.to.clear();
                *out += "250 2.0.0 OK\r\n";
            }
            Request::Noop { .. } => *out += "250 2.0.0 OK\r\n",
            Request::Vrfy { .. } => *out += "252 2.5.2 Cannot verify; send the mail\r\n",
            Request::Help { .. } => *out += "214 2.0.0 See RFC 5321\r\n",
            Request::Quit => {
                *out += "221 2.0.0 Bye\r\n";
                return Next::Quit;
            }
            Request::StartTls if self.tls.is_some() && !secure => {
                *out += "220 2.0.0 Ready to start TLS\r\n";
                return Next::StartTls;
            }
            Request::StartTls => *out += "502 5.5.1 STARTTLS is not available\r\n",
            other => *out += &format!("502 5.5.1 {} is not implemented\r\n", other.name()),
        }
        Next::Continue
    }

    /// Commits the message, then says 250; 451 if it cannot be stored, so
    /// the sending server keeps it and tries again.
    async fn deliver(&self, message: Vec<u8>, tx: &mut Transaction, peer: SocketAddr, secure: bool) -> String {
        let envelope = Envelope { from: tx.from.take(), to: std::mem::take(&mut tx.to) };
        let helo = tx.helo.as_deref().unwrap_or("unknown");
        let with = if secure { "ESMTPS" } else { "ESMTP" };
        let received = format!(
            "Received: from {helo} ({}) by {} (Tocsin) with {with}; {}\r\n",
            peer.ip(),
            self.hostname,
            self.inbox.clock.now().to_rfc2822()
        );
        let mut raw = received.into_bytes();
        raw.extend_from_slice(&message);
        match self.inbox.receive(&raw, &envelope, "smtp").await {
            Ok(id) => format!("250 2.0.0 Queued as {id}\r\n"),
            Err(e) => {
                tracing::error!(error = %e, "cannot store inbound mail; answering 451");
                "451 4.3.0 Cannot store the message now; try again later\r\n".into()
            }
        }
    }
}

/// The answer to a client whose last `max_errors` commands all failed.
const TOO_MANY_ERRORS: &str = "421 4.7.0 Too many errors in a row, closing connection\r\n";

/// How many sessions each client address holds. An IPv6 client counts by
/// its /64, the block one host or site is usually given, so it cannot
/// dodge the limit by walking its own addresses.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        }
    }

    /// A session slot for `ip`, or `None` when it already holds `max`.
    fn claim(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Claim> {
        let key = Self::key(ip);
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Claim { of: self.clone(), key })
    }
}

/// One session's slot; given back when the session ends.
struct Claim {
    of: Arc<PerClient>,
    key: IpAddr,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = self.of.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The answer to a session a draining server ends (RFC 5321 §3.8).
const SHUTTING_DOWN: &str = "421 4.3.2 Service shutting down, try again later\r\n";

enum Next {
    Continue,
    Data,
    Quit,
    StartTls,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(PerClient::key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(PerClient::key(ip("2001:db8:1:2:bbbb::9")), PerClient::key(ip("2001:db8:1:2::7")));
        assert_ne!(PerClient::key(ip("2001:db8:1:3::1")), PerClient::key(ip("2001:db8:1:2::1")));
        assert_eq!(PerClient::key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(PerClient::key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn a_claim_is_given_back_when_it_ends() {
        let per = Arc::new(PerClient::default());
        let a = "192.0.2.7".parse().unwrap();
        let first = per.claim(a, 2).unwrap();
        let _second = per.claim(a, 2).unwrap();
        assert!(per.claim(a, 2).is_none());
        assert!(per.claim("192.0.2.8".parse().unwrap(), 2).is_some());
        drop(first);
        assert!(per.claim(a, 2).is_some());
    }
}
