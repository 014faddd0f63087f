//! Problem bodies for the requests hyper refuses before any handler sees them.
//!
//! When a request head cannot be parsed (a malformed `content-length`, a request target over
//! 64 KiB, a header block past hyper's buffer), hyper answers on its own with a bare head —
//! status, `connection: close`, `content-length: 0`, `date` — and closes the connection. It
//! offers no hook for that answer, so each connection's stream is wrapped: a write that is
//! exactly such a head (one of those statuses, no `content-type`, an empty body, nothing after
//! it) is replaced by the same status with the problem+json body every other error has.
//! Responses of handlers always carry a `content-type`, so they are never touched.

use std::io::{IoSlice, Result as IoResult};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use salvo::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::AppError;

/// Longer than any head hyper sends on its own (status line and three short headers).
const MAX_BARE_HEAD: usize = 256;

/// A connection's stream whose automatic parse-error answers carry a problem body.
pub struct ProblemOnParseError<S> {
    inner: S,
    /// The replacement answer not yet written to `inner`.
    pending: Vec<u8>,
    written: usize,
    /// `server.max_header_bytes`, named in a 431's detail.
    max_header_bytes: usize,
}

impl<S> ProblemOnParseError<S> {
    pub fn new(inner: S, max_header_bytes: usize) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
            max_header_bytes,
        }
    }

    /// The problem answer replacing `head`, when `head` is one of hyper's automatic answers.
    fn replacement(&self, head: &[u8]) -> Option<Vec<u8>> {
        let head = std::str::from_utf8(head).ok()?;
        let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?;
        let error = match status {
            "400" => AppError::MalformedRequest,
            "414" => AppError::UriTooLong,
            "431" => AppError::HeadersTooLarge {
                limit: self.max_header_bytes,
            },
            _ => return None,
        };
        let (fields, rest) = head.split_once("\r\n")?.1.split_once("\r\n\r\n")?;
        let mut date = None;
        let mut empty = false;
        for line in fields.split("\r\n") {
            let (name, value) = line.split_once(':')?;
            match name.to_ascii_lowercase().as_str() {
                "content-type" => return None,
                "content-length" => empty = value.trim() == "0",
                "date" => date = Some(value.trim()),
                _ => {}
            }
        }
        if !rest.is_empty() || !empty {
            return None;
        }
        Some(render(&error, date))
    }
}

/// Status line, headers and body of `error`'s problem, on a connection about to close.
fn render(error: &AppError, date: Option<&str>) -> Vec<u8> {
    let problem = error.to_problem();
    let body = serde_json::to_vec(&problem).expect("problem details always serialize");
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\nconnection: close\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        crate::error::PROBLEM_JSON,
        body.len(),
    );
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl<S: AsyncWrite + Unpin> ProblemOnParseError<S> {
    /// Writes out the replacement answer, if one is pending.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Swallows `buf` when it is one of hyper's bare answers, queueing its replacement.
    fn intercept(&mut self, buf: &[u8]) -> bool {
        // Cheap tests first: this runs on every write, body chunks of downloads included.
        let bare_head = buf.len() <= MAX_BARE_HEAD
            && buf.starts_with(b"HTTP/1.1 4")
            && buf.ends_with(b"\r\n\r\n");
        if bare_head
            && self.pending.is_empty()
            && let Some(answer) = self.replacement(buf)
        {
            self.pending = answer;
            self.written = 0;
            return true;
        }
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemOnParseError<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemOnParseError<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<IoResult<usize>> {
        ready!(self.poll_pending(cx))?;
        if self.intercept(buf) {
            ready!(self.poll_pending(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && self.intercept(only)
        {
            ready!(self.poll_pending(cx))?;
            return Poll::Ready(Ok(only.len()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapper() -> ProblemOnParseError<Vec<u8>> {
        ProblemOnParseError::new(Vec::new(), 32768)
    }

    #[test]
    fn hypers_bare_answers_are_replaced() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 03:23:22 GMT\r\n\r\n";
        let answer = String::from_utf8(wrapper().replacement(head).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(answer.contains("content-type: application/problem+json\r\n"));
        assert!(answer.contains("date: Wed, 02 Dec 2026 03:23:22 GMT\r\n"));
        assert!(answer.contains("\"code\":\"request_headers_too_large\""));
    }

    #[test]
    fn handler_responses_are_left_alone() {
        for head in [
            // A handler's problem: it has a content type.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n"[..],
            // A body follows the head.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            // Statuses hyper never sends on its own.
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            // Not a whole head.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(
                wrapper().replacement(head).is_none(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
