//! `cloud-asset-uploader events …`: what operators do with deliveries by hand.

use std::fmt::Write;

use crate::config::Settings;
use crate::db::{self, DeliveryRow, EventRepository, RetrySelection};

/// Deliveries listed at most.
const LIST_LIMIT: u32 = 1000;

/// The `events` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Print the latest webhook deliveries, newest first: id, status, attempts, endpoint,
    /// event type, asset, event id, and the last error.
    List {
        /// Only deliveries given up on (after webhooks.max_attempts or webhooks.max_age).
        #[arg(long)]
        failed: bool,
    },
    /// Make deliveries due again now, with fresh attempts (the same event and webhook-id).
    Retry {
        /// The delivery's id, as `events list` prints it.
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<i64>,
        /// Every failed delivery.
        #[arg(long)]
        all_failed: bool,
    },
}

/// Runs `command` against the configured database; returns what to print.
pub async fn run(settings: &Settings, command: EventsCommand) -> anyhow::Result<String> {
    let events = EventRepository::new(db::connect_lazy(&settings.database)?);
    match command {
        EventsCommand::List { failed } => {
            let rows = events.list(failed, LIST_LIMIT).await?;
            Ok(render(&rows))
        }
        EventsCommand::Retry { id, all_failed } => {
            let selection = match id {
                Some(id) if !all_failed => RetrySelection::One(id),
                _ => RetrySelection::AllFailed,
            };
            let count = events.retry(selection).await?;
            if let (RetrySelection::One(id), 0) = (selection, count) {
                anyhow::bail!("no delivery has the id {id}");
            }
            Ok(format!("{count} delivery(ies) due again\n"))
        }
    }
}

/// One line per delivery, tab-separated, under a header.
fn render(rows: &[DeliveryRow]) -> String {
    let mut text = String::from(
        "id\tstatus\tattempts\tendpoint\ttype\tasset_id\tevent_id\tcreated_at\tnext_attempt_at\tlast_error\n",
    );
    for row in rows {
        let last = match (&row.last_status_code, &row.last_error) {
            (_, Some(error)) => error.clone(),
            (Some(code), None) => format!("HTTP {code}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            row.id,
            row.status,
            row.attempts,
            row.endpoint,
            row.event_type,
            row.asset_id,
            super::sender::webhook_id(row.event_id),
            row.event_created_at.to_rfc3339(),
            row.next_attempt_at.to_rfc3339(),
            last.replace(['\t', '\n'], " "),
        );
    }
    text
}
