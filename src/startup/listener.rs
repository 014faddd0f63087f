//! The server's listening socket, closable on its own: once a shutdown has drained, the
//! socket is closed so that new connections are refused at once (a load balancer or client
//! retries elsewhere) instead of being accepted by the kernel and never served while the
//! requests in flight finish. Connections the kernel has already completed (the backlog) are
//! taken and served before the socket closes: closing would reset them, failing requests
//! their clients had already sent.

use std::collections::VecDeque;

use salvo::conn::tcp::{TcpAcceptor, TcpCoupler};
use salvo::conn::{Accepted, Acceptor, ConnCtrl, Holding, StraightStream};
use salvo::http::uri::Scheme;

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
    /// The backlog taken at close, still to be handed to the server.
    backlog: VecDeque<TcpStream>,
    holdings: Vec<Holding>,
    closed: watch::Receiver<bool>,
    /// Told once the socket is gone and its backlog handed to the server.
    dropped: watch::Sender<bool>,
}

/// Closes the socket of the [`ClosableAcceptor`] it was made with.
pub struct CloseListener {
    close: watch::Sender<bool>,
    dropped: watch::Receiver<bool>,
}

impl CloseListener {
    /// Asks the acceptor to drop its socket and waits (at most a second) until it has, and
    /// has handed the connections left in the backlog to the server: only then are new
    /// connections refused and the accepted ones all served.
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
            backlog: VecDeque::new(),
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
            self.backlog = take_backlog(inner);
            // Dropping the acceptor closes the socket.
            self.inner = None;
        }
        if let Some(stream) = self.backlog.pop_front() {
            return Ok(self.accepted(stream));
        }
        // All handed over: the server may stop its accept loop now (its own stop command),
        // so this never needs to answer again.
        let _ = self.dropped.send(true);
        std::future::pending().await
    }
}

impl ClosableAcceptor {
    /// A connection taken from the backlog, as the TCP acceptor would have handed it over.
    fn accepted(&self, stream: TcpStream) -> Accepted<TcpCoupler<Connection>, Connection> {
        let conn_ctrl = ConnCtrl::new();
        let remote_addr = stream
            .peer_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let stream = StraightStream::new(stream, None, conn_ctrl.clone(), None);
        Accepted {
            coupler: TcpCoupler::new(),
            stream: ProblemOnParseError::new(stream, self.max_header_bytes),
            fuse_config: None,
            conn_ctrl,
            local_addr: self.holdings[0].local_addr.clone(),
            remote_addr: remote_addr.into(),
            http_scheme: Scheme::HTTP,
        }
    }
}

/// Every connection the kernel completed on `acceptor`'s socket and nobody accepted yet,
/// taken without waiting (a direct `accept` until it would block: the runtime may not have
/// seen them arrive).
fn take_backlog(acceptor: &TcpAcceptor) -> VecDeque<TcpStream> {
    let socket = socket2::SockRef::from(acceptor.inner());
    let mut backlog = VecDeque::new();
    while let Ok((connection, _)) = socket.accept() {
        let stream = std::net::TcpStream::from(connection);
        if stream.set_nonblocking(true).is_ok()
            && let Ok(stream) = TcpStream::from_std(stream)
        {
            backlog.push_back(stream);
        }
    }
    if !backlog.is_empty() {
        tracing::debug!(
            connections = backlog.len(),
            "serving the backlog before closing"
        );
    }
    backlog
}
