//! The HTTP listener: hyper's HTTP/1 server under an accept loop of our
//! own, because `axum::serve` can set no limit on what one client holds.
//!
//! - A connection that has not sent a request's full headers within
//!   `[server] header_timeout` is closed (slowloris: trickling header bytes
//!   once kept a connection open for minutes). The clock runs while a kept-
//!   alive connection waits for its next request too, so idle connections
//!   go the same way.
//! - Each request, its body's upload included, must be answered within
//!   `[server] request_timeout` (the raw-mail webhook within `[server]
//!   mail_hook_timeout`, since a provider may post 25 MiB); past it the
//!   client gets 408.
//! - At most `[server] max_connections` connections are served at once;
//!   the next one waits in the kernel's accept queue until a slot is free.
//! - Each request carries its connection's peer address (axum's
//!   [`ConnectInfo`]), which [`ClientAddr`] reads: the sign-in limit counts
//!   by it. It is the TCP peer: behind a reverse proxy, the proxy's address
//!   (we trust no forwarded-for header).
//!
//! Shaped like the SMTP listener (and tokio-rs/mini-redis): it takes a
//! bound listener, counts connections with a semaphore, and stops through
//! a watch channel, which is how [`crate::app::App::drain`] stops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower_http::add_extension::AddExtension;

use super::error::ApiError;
use super::hooks::MAIL_HOOK;

/// What one client may hold, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub mail_hook_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn of(server: &crate::config::Server) -> Limits {
        Limits {
            header_timeout: server.header_timeout,
            request_timeout: server.request_timeout,
            mail_hook_timeout: server.mail_hook_timeout,
            max_connections: server.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` turns true. Then it
/// closes the listener (new connections are refused), lets each request in
/// flight finish, closes idle connections, and returns when every
/// connection has ended. The caller bounds that wait (`[server]
/// drain_timeout`).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            a = accept(&listener, &slots) => a,
        };
        let (stream, peer, permit) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let service = TowerToHyperService::new(AddExtension::new(router.clone(), ConnectInfo(peer)));
        let (http, mut stop) = (http.clone(), shutdown.clone());
        connections.spawn(async move {
            let _permit = permit;
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = async { drop(stop.wait_for(|s| *s).await) } => {
                    // Finishes the request in flight, then closes.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            match ended {
                Err(e) if e.is_timeout() => {
                    tracing::info!(%peer, "HTTP connection closed: no full request headers within [server] header_timeout");
                }
                Err(e) => tracing::debug!(%peer, error = %e, "HTTP connection ended with an error"),
                Ok(()) => {}
            }
        });
    }
    drop(listener);
    tracing::info!(connections = connections.len(), "HTTP listener closed; finishing requests in flight");
    while connections.join_next().await.is_some() {}
}

/// The next connection, once a slot is free for it.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring only waits.
    let permit = slots.clone().acquire_owned().await.map_err(std::io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, permit))
}

/// Answers 408 when a request, its body's upload included, is not answered
/// in time: a client that trickles its body holds a connection and a task.
pub async fn time_limit(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let mail = |path: &str| path == MAIL_HOOK || path.strip_prefix(MAIL_HOOK).is_some_and(|rest| rest.starts_with('/'));
    let limit = if mail(request.uri().path()) { limits.mail_hook_timeout } else { limits.request_timeout };
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, %path, limit = %humantime::format_duration(limit), "HTTP request timed out");
            let key = if mail(&path) { "mail_hook_timeout" } else { "request_timeout" };
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request was not received and answered within {} ([server] {key}); send it again",
                    humantime::format_duration(limit)
                ),
            )
            .into_response()
        }
    }
}

/// The client's address, when the request came through [`serve`] (a
/// router called some other way, as in unit tests, has none).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| *a)))
    }
}
