//! Connection-level limits, applied before a byte of HTTP is read: a cap on open connections
//! (each costs a task, a file descriptor and buffers), so no number of idle or half-open
//! connections can exhaust the process. Header-read and keep-alive timeouts are hyper's, set
//! where the server is built (`lib.rs`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::framing::FramingGuard;

/// Wraps an acceptor (TLS) so that at most `max` connections are open at once. A connection
/// over the cap is closed at once, before its TLS handshake: refusing is cheaper than queueing,
/// and clients retry.
#[derive(Clone)]
pub struct ConnectionLimit<A> {
    inner: A,
    permits: Arc<Semaphore>,
    max: usize,
    last_warning: Arc<AtomicU64>,
    started: Instant,
}

impl<A> ConnectionLimit<A> {
    /// Allows at most `max` open connections through `inner`.
    pub fn new(inner: A, max: usize) -> Self {
        ConnectionLimit {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            max,
            last_warning: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// Logs a refusal at most once a minute, so a flood cannot fill the log either.
    fn warn_refused(&self) {
        let now = self.started.elapsed().as_secs() + 60;
        let last = self.last_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60
            && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(max_connections = self.max, "connection limit reached: refusing new connections");
        }
    }
}

type AcceptFuture<S, T> = Pin<Box<dyn Future<Output = io::Result<(Limited<S>, T)>> + Send>>;

impl<I, S, A> Accept<I, S> for ConnectionLimit<A>
where
    A: Accept<I, S> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = AcceptFuture<A::Stream, A::Service>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        if permit.is_err() {
            self.warn_refused();
        }
        let inner = self.inner.clone();
        Box::pin(async move {
            // Dropping `stream` closes the connection.
            let permit = permit.map_err(|_| io::Error::other("connection limit reached"))?;
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((Limited { inner: FramingGuard::new(stream), _permit: permit }, service))
        })
    }
}

/// A connection that holds its place under the cap until it is dropped (its requests' framing
/// checked on the way: [`FramingGuard`]).
pub struct Limited<S> {
    inner: FramingGuard<S>,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Implements `AsyncWrite` for a connection wrapper by passing every call to its `inner` field
/// (the wrappers here only look at what is read, or hold something for the connection's life).
macro_rules! write_through_inner {
    ($wrapper:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<S> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
        }
    };
}
pub(crate) use write_through_inner;

write_through_inner!(Limited);

/// How long a TLS handshake may take before the connection is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
