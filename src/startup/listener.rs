//! The server's listening socket, closable on its own: once a shutdown has drained, the
//! socket is closed so that new connections are refused at once (a load balancer or client
//! retries elsewhere) instead of being accepted by the kernel and never served while the
//! requests in flight finish.

use salvo::conn::tcp::{TcpAcceptor, TcpCoupler};
use salvo::conn::{Accepted, Acceptor, Holding, StraightStream};

use super::parse_errors::ProblemOnParseError;
use salvo::fuse::ArcFusePolicy;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// A connection as the server sees it: TCP with salvo's timeouts, and problem bodies for
/// hyper's own refusals.
pub type Connection = ProblemOnParseError<StraightStream<TcpStream>>;

/// A TCP acceptor that drops its socket when [`CloseListener::close`] is called.
pub struct ClosableAcceptor {
    inner: Option<TcpAcceptor>,
    /// `server.max_header_bytes`, for the problems of refused heads.
    max_header_bytes: usize,
    holdings: Vec<Holding>,
    closed: watch::Receiver<bool>,
    /// Told once the socket is gone.
    dropped: watch::Sender<bool>,
}

/// Closes the socket of the [`ClosableAcceptor`] it was made with.
pub struct CloseListener {
    close: watch::Sender<bool>,
    dropped: watch::Receiver<bool>,
}

impl CloseListener {
    /// Asks the acceptor to drop its socket and waits (at most a second) until it has: only
    /// then are new connections refused.
    pub async fn close(&self) {
        let _ = self.close.send(true);
        let mut dropped = self.dropped.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            dropped.wait_for(|dropped| *dropped),
        )
        .await;
    }
}

impl ClosableAcceptor {
    pub fn new(inner: TcpAcceptor, max_header_bytes: usize) -> (Self, CloseListener) {
        let (close, closed) = watch::channel(false);
        let (dropped_tx, dropped) = watch::channel(false);
        let holdings = inner.holdings().to_vec();
        let acceptor = Self {
            inner: Some(inner),
            max_header_bytes,
            holdings,
            closed,
            dropped: dropped_tx,
        };
        (acceptor, CloseListener { close, dropped })
    }
}

impl Acceptor for ClosableAcceptor {
    type Coupler = TcpCoupler<Connection>;
    type Stream = Connection;

    fn holdings(&self) -> &[Holding] {
        &self.holdings
    }

    async fn accept(
        &mut self,
        fuse_policy: Option<ArcFusePolicy>,
    ) -> std::io::Result<Accepted<Self::Coupler, Self::Stream>> {
        if let Some(inner) = self.inner.as_mut() {
            let mut closed = self.closed.clone();
            tokio::select! {
                accepted = inner.accept(fuse_policy) => {
                    let max_header_bytes = self.max_header_bytes;
                    return accepted.map(|accepted| {
                        accepted.map_into(
                            |_| TcpCoupler::new(),
                            |stream| ProblemOnParseError::new(stream, max_header_bytes),
                        )
                    });
                }
                _ = closed.wait_for(|closed| *closed) => {}
            }
        }
        // Dropping the acceptor closes the socket; the server stops its accept loop soon
        // after (its own stop command), so this never needs to answer again.
        self.inner = None;
        let _ = self.dropped.send(true);
        std::future::pending().await
    }
}
