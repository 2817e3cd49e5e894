//! The connections the coordinator accepts, bounded: at most
//! `max_connections` open at once (one more is closed as soon as it is
//! accepted, so a flood costs an accept and a close each, never a spin),
//! and a connection that has made no call with the token within the
//! handshake timeout is closed (one that never speaks HTTP/2, or speaks it
//! without the token). A connection that made one keeps its slot until it
//! closes or stops answering the server's HTTP/2 pings.
//!
//! [`Incoming`] accepts; each [`Guarded`] connection holds its slot (a
//! semaphore permit) until it is dropped; [`Admitted`] is what a request
//! carries to mark its connection as admitted, once the token is checked.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// File descriptors kept out of the connection budget: the database, the
/// listener, blocking threads' files, the standard streams.
const RESERVED_FDS: u64 = 256;
/// How long accepting pauses after it failed (a full descriptor table,
/// for one): long enough not to spin, short enough to go unnoticed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The least time between two log lines about refused connections.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Raise the soft limit of open files to the hard limit, and return how
/// many connections fit below it with `RESERVED_FDS` (a quarter of a
/// small limit) kept for everything else; at least 1.
pub fn fd_budget() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    match limit.current {
        None => usize::MAX,
        Some(files) => usize::try_from(files - RESERVED_FDS.min(files / 4)).unwrap_or(usize::MAX).max(1),
    }
}

/// Set on a connection's first call that carries the right token; read by
/// the connection itself, which then stops counting its handshake time.
#[derive(Clone, Debug, Default)]
pub struct Admitted(Arc<AtomicBool>);

impl Admitted {
    pub fn admit(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_admitted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What every request on a connection carries in its extensions.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub tcp: TcpConnectInfo,
    pub admitted: Admitted,
}

/// An accepted connection: its slot, and the deadline for its first call
/// with the token (dropped once it made one).
pub struct Guarded {
    stream: TcpStream,
    admitted: Admitted,
    deadline: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl Guarded {
    /// `Err` once the handshake timeout passed without an admitted call;
    /// registers the deadline's wakeup otherwise.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = &mut self.deadline else { return Ok(()) };
        if self.admitted.is_admitted() {
            self.deadline = None;
            return Ok(());
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection made no call with the token within the handshake timeout",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl Connected for Guarded {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo { tcp: self.stream.connect_info(), admitted: self.admitted.clone() }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check_deadline(cx)?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check_deadline(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_deadline(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Connections refused since the last log line about them.
struct Refusals {
    count: u64,
    logged: Option<Instant>,
}

impl Refusals {
    /// Count one refusal; print a line at most every [`REFUSAL_LOG_INTERVAL`].
    fn note(&mut self, limit: usize) {
        self.count += 1;
        if self.logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
            tracing::warn!(
                "{} connection(s) closed at once: {limit} are open, the limit (--max-connections)",
                self.count
            );
            self.count = 0;
            self.logged = Some(Instant::now());
        }
    }
}

/// The accepted connections, bounded, as the server takes them.
pub struct Incoming {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    limit: usize,
    handshake_timeout: Duration,
    pause: Option<Pin<Box<Sleep>>>,
    refusals: Refusals,
}

impl Incoming {
    pub fn new(listener: TcpListener, limit: usize, handshake_timeout: Duration) -> Incoming {
        Incoming {
            listener,
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            handshake_timeout,
            pause: None,
            refusals: Refusals { count: 0, logged: None },
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<Guarded>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Guarded>>> {
        let this = &mut *self;
        loop {
            if let Some(pause) = &mut this.pause {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            let stream = match ready!(this.listener.poll_accept(cx)) {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors or memory, or the peer already
                    // gone: accepting again at once would spin.
                    if !matches!(error.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tracing::warn!("cannot accept a connection: {error}");
                        this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_PAUSE)));
                    }
                    continue;
                }
            };
            let Ok(slot) = this.slots.clone().try_acquire_owned() else {
                drop(stream);
                this.refusals.note(this.limit);
                continue;
            };
            // A completion's small answer must not wait for a delayed ACK.
            if stream.set_nodelay(true).is_err() {
                continue;
            }
            let deadline = Some(Box::pin(tokio::time::sleep(this.handshake_timeout)));
            return Poll::Ready(Some(Ok(Guarded { stream, admitted: Admitted::default(), deadline, _slot: slot })));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    use super::*;

    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        (listener, address)
    }

    /// The connection past the limit is closed at once; a freed slot takes
    /// the next one.
    #[tokio::test]
    async fn connections_past_the_limit_are_closed() {
        let (listener, address) = listener().await;
        let mut incoming = Incoming::new(listener, 2, Duration::from_secs(3600));
        let _a = TcpStream::connect(address).await.unwrap();
        let first = incoming.next().await.unwrap().unwrap();
        let _b = TcpStream::connect(address).await.unwrap();
        let _second = incoming.next().await.unwrap().unwrap();
        let mut third = TcpStream::connect(address).await.unwrap();
        let mut byte = [0u8; 1];
        tokio::select! {
            _ = incoming.next() => panic!("no connection is accepted past the limit"),
            read = third.read(&mut byte) => assert_eq!(read.unwrap_or(0), 0, "the connection past the limit is closed"),
        }
        drop(first);
        let mut fourth = TcpStream::connect(address).await.unwrap();
        let mut accepted = incoming.next().await.unwrap().unwrap();
        fourth.write_all(b"x").await.unwrap();
        accepted.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
    }

    /// A connection that is never admitted fails its reads after the
    /// handshake timeout; an admitted one does not.
    #[tokio::test]
    async fn unadmitted_connections_time_out() {
        let (listener, address) = listener().await;
        let mut incoming = Incoming::new(listener, 4, Duration::from_millis(300));
        let _silent = TcpStream::connect(address).await.unwrap();
        let mut silent = incoming.next().await.unwrap().unwrap();
        let mut byte = [0u8; 1];
        let error = silent.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let mut peer = TcpStream::connect(address).await.unwrap();
        let mut admitted = incoming.next().await.unwrap().unwrap();
        admitted.connect_info().admitted.admit();
        tokio::time::sleep(Duration::from_millis(600)).await;
        peer.write_all(b"y").await.unwrap();
        admitted.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"y");
    }

    #[test]
    fn the_budget_stays_below_the_file_limit() {
        let budget = fd_budget();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(files) = limit.current {
            assert!((budget as u64) < files, "{budget} connections under a limit of {files} files");
        }
        assert!(budget >= 1);
    }
}
