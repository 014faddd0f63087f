//! Dependencies failing under load: Postgres restarted, Postgres stopped for 10 s, storage
//! stopped for 10 s.

use std::time::{Duration, Instant};

use crate::support::containers::Container;
use crate::support::load::Load;
use crate::support::server::{Options, Server};
use crate::support::{one_at_a_time, verify};

/// Workers of the load, as in the manual runs.
const WORKERS: usize = 16;
/// How soon after a dependency returns every route must succeed again.
const RECOVERY: Duration = Duration::from_secs(2);

enum Fault {
    RestartPostgres,
    StopPostgres(Duration),
    StopStorage(Duration),
}

/// Runs the load through `fault` and checks the answers and the data afterwards.
async fn under_load_through(name: &str, fault: Fault) {
    // Arrange
    let _turn = one_at_a_time().await;
    let postgres = Container::postgres().await;
    let s3 = Container::s3().await;
    let server = Server::start(&postgres, &s3, &Options::default()).await;
    let load = Load::start(&server.base, WORKERS);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Act
    let back: Instant = match fault {
        Fault::RestartPostgres => postgres.restart().await,
        Fault::StopPostgres(down) => {
            postgres.stop();
            tokio::time::sleep(down).await;
            postgres.start().await
        }
        Fault::StopStorage(down) => {
            s3.stop();
            tokio::time::sleep(down).await;
            s3.start().await
        }
    };
    tokio::time::sleep(RECOVERY + Duration::from_secs(2)).await;
    let record = load.stop().await;

    // Assert
    verify::assert_only_successes_and_503s(&record);
    assert!(
        verify::unavailable_answers(&record) > 0,
        "the fault was never felt: the test proved nothing"
    );
    let recovered = verify::recovery(&record, back);
    assert!(
        recovered <= RECOVERY,
        "every route succeeded again only {recovered:?} after the dependency returned"
    );
    verify::assert_all_succeeded_after(&record, back + RECOVERY);
    let checked =
        verify::assert_every_complete_asset_is_stored(&server.base, &postgres.url(), &record).await;
    assert!(checked >= record.completed.len());
    verify::summary(name, &record, Some(recovered), checked);
}

#[tokio::test]
async fn a_postgres_restart_under_load_loses_nothing_and_is_over_within_2_s() {
    under_load_through("postgres restart", Fault::RestartPostgres).await;
}

#[tokio::test]
async fn postgres_stopped_for_10_s_under_load_gets_only_503s_and_loses_nothing() {
    under_load_through(
        "postgres stopped 10 s",
        Fault::StopPostgres(Duration::from_secs(10)),
    )
    .await;
}

#[tokio::test]
async fn storage_stopped_for_10_s_under_load_never_completes_a_missing_object() {
    under_load_through(
        "storage stopped 10 s",
        Fault::StopStorage(Duration::from_secs(10)),
    )
    .await;
}
