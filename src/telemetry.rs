//! Logging: a `tracing` subscriber writing text or JSON lines to stdout.
//!
//! Lines are written by a thread of their own: a request only queues its line, and under load
//! the thread writes many lines with one system call.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`. Keep the
/// guard until the process ends: dropping it writes out the lines still queued.
pub fn init(settings: &LogSettings) -> WorkerGuard {
    // Not lossy: when the queue is full, a request waits rather than its line being dropped.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stdout()));
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        // Colour codes only for a terminal, never into collected logs.
        .with_ansi(std::io::stdout().is_terminal());
    // A second init (tests building several apps) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}
