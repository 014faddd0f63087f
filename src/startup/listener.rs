//! The server's listening socket, closable on its own: once a shutdown has drained, the
//! socket is closed so that new connections are refused at once (a load balancer or client
//! retries elsewhere) instead of being accepted by the kernel and never served while the
//! requests in flight finish.

use salvo::conn::tcp::{TcpAcceptor, TcpCoupler};
use salvo::conn::{Accepted, Acceptor, Holding, StraightStream};
use salvo::fuse::ArcFusePolicy;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// A TCP acceptor that drops its socket when [`CloseListener::close`] is called.
pub struct ClosableAcceptor {
    inner: Option<TcpAcceptor>,
    holdings: Vec<Holding>,
    closed: watch::Receiver<bool>,
}

/// Closes the socket of the [`ClosableAcceptor`] it was made with.
pub struct CloseListener(watch::Sender<bool>);

impl CloseListener {
    pub fn close(&self) {
        let _ = self.0.send(true);
    }
}

impl ClosableAcceptor {
    pub fn new(inner: TcpAcceptor) -> (Self, CloseListener) {
        let (tx, closed) = watch::channel(false);
        let holdings = inner.holdings().to_vec();
        let acceptor = Self {
            inner: Some(inner),
            holdings,
            closed,
        };
        (acceptor, CloseListener(tx))
    }
}

impl Acceptor for ClosableAcceptor {
    type Coupler = TcpCoupler<StraightStream<TcpStream>>;
    type Stream = StraightStream<TcpStream>;

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
                accepted = inner.accept(fuse_policy) => return accepted,
                _ = closed.wait_for(|closed| *closed) => {}
            }
        }
        // Dropping the acceptor closes the socket; the server stops its accept loop soon
        // after (its own stop command), so this never needs to answer again.
        self.inner = None;
        std::future::pending().await
    }
}
