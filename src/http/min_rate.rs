//! A floor under the speed of a request body: the local storage routes take uploads of any
//! size, so a fixed timeout would either cut off a large file on a slow phone or let a client
//! hold a connection open for hours sending nothing. Instead, every window of time must bring
//! a minimum number of bytes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

/// The error a too-slow body ends with; [`is_too_slow`] recognises it.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {bytes_per_sec} bytes/s over {} s", window.as_secs())]
pub struct TooSlow {
    pub bytes_per_sec: u64,
    pub window: Duration,
}

/// Whether `error`, or an error it wraps (a form parser wraps the body's), is a body cut off
/// by [`MinimumRate`].
pub fn is_too_slow(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<TooSlow>() {
        return true;
    }
    let wrapped = match error.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => error.source(),
    };
    wrapped.is_some_and(is_too_slow)
}

/// `inner`, failing with [`TooSlow`] when a window of `window` brings fewer than
/// `bytes_per_sec × window` bytes.
pub struct MinimumRate<S> {
    inner: S,
    bytes_per_sec: u64,
    window: Duration,
    /// Bytes received since the current window began.
    received: u64,
    window_end: Pin<Box<Sleep>>,
}

impl<S> MinimumRate<S> {
    pub fn new(inner: S, bytes_per_sec: u64, window: Duration) -> Self {
        Self {
            inner,
            bytes_per_sec,
            window,
            received: 0,
            window_end: Box::pin(tokio::time::sleep(window)),
        }
    }

    fn required(&self) -> u64 {
        let bytes = self.bytes_per_sec as f64 * self.window.as_secs_f64();
        bytes as u64
    }

    /// At a window's end: a new window when this one brought enough, else the error.
    fn next_window(&mut self) -> Result<(), std::io::Error> {
        if self.received < self.required() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                TooSlow {
                    bytes_per_sec: self.bytes_per_sec,
                    window: self.window,
                },
            ));
        }
        self.received = 0;
        let next = Instant::now() + self.window;
        self.window_end.as_mut().reset(next);
        Ok(())
    }
}

impl<S> Stream for MinimumRate<S>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received = this.received.saturating_add(chunk.len() as u64);
                if this.window_end.is_elapsed()
                    && let Err(error) = this.next_window()
                {
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending => {
                while this.window_end.as_mut().poll(cx).is_ready() {
                    if let Err(error) = this.next_window() {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Poll::Pending
            }
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    /// A body sending `chunk` bytes every `every`, `count` times.
    fn trickle(
        chunk: usize,
        every: Duration,
        count: usize,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Unpin {
        Box::pin(futures::stream::unfold(0, move |sent| async move {
            if sent == count {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(Bytes::from(vec![0u8; chunk])), sent + 1))
        }))
    }

    /// Reads `body` under a floor of 1 000 bytes per 100 ms window.
    async fn read_all(
        body: impl Stream<Item = std::io::Result<Bytes>> + Unpin,
    ) -> Result<usize, std::io::Error> {
        let mut body = MinimumRate::new(body, 10_000, Duration::from_millis(100));
        let mut total = 0;
        while let Some(chunk) = body.next().await {
            total += chunk?.len();
        }
        Ok(total)
    }

    #[tokio::test]
    async fn a_slow_but_steady_body_arrives_whole() {
        // 3 000 bytes every 100 ms for a second: three times the floor.
        let total = read_all(trickle(300, Duration::from_millis(10), 100)).await;
        assert_eq!(total.unwrap(), 30_000);
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_cut_off_after_a_window() {
        let started = Instant::now();
        let stalled =
            Box::pin(trickle(5000, Duration::from_millis(10), 1).chain(futures::stream::pending()));
        let error = read_all(stalled).await.unwrap_err();
        assert!(is_too_slow(&error), "{error}");
        // The first window brought enough; the second brought nothing.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn a_body_below_the_floor_is_cut_off_even_while_bytes_keep_coming() {
        let error = read_all(trickle(10, Duration::from_millis(10), 100))
            .await
            .unwrap_err();
        assert!(is_too_slow(&error), "{error}");
    }

    #[test]
    fn a_too_slow_body_is_recognised_inside_another_error() {
        let cut = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            TooSlow {
                bytes_per_sec: 1,
                window: Duration::from_secs(1),
            },
        );
        // As the form parser hands the body's error back: boxed, then wrapped again.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(cut);
        let wrapped = std::io::Error::other(boxed);
        assert!(is_too_slow(&wrapped));
        assert!(!is_too_slow(&std::io::Error::other("reset")));
    }
}
