//! What the sweeps hand their callbacks, gathered for assertions.

use cloud_asset_uploader::lifecycle::{ExpiredSweep, Orphan, Sweeper};

/// Runs `sweeper`'s sweep of expired uploads and gathers the storage keys it handed over, in
/// order; checks the count it returned against them.
pub async fn sweep_expired(sweeper: &Sweeper, dry_run: bool) -> (ExpiredSweep, Vec<String>) {
    let mut keys = Vec::new();
    let sweep = sweeper
        .sweep_expired(dry_run, |key| keys.push(key.to_owned()))
        .await
        .expect("the sweep of expired uploads");
    assert_eq!(
        sweep.removed,
        keys.len() as u64,
        "the count is what was handed over"
    );
    (sweep, keys)
}

/// Everything one orphan scan removed (or, dry, would remove), in the order it was found.
#[derive(Debug, Default)]
pub struct Orphans {
    pub objects: Vec<String>,
    pub uploads: Vec<String>,
    pub working_files: Vec<String>,
}

/// Runs `sweeper`'s orphan scan and gathers what it handed over; checks the counts it
/// returned against what it handed over.
pub async fn scan_orphans(sweeper: &Sweeper, dry_run: bool) -> Orphans {
    let mut found = Orphans::default();
    let sweep = sweeper
        .sweep_orphans(dry_run, |orphan| match orphan {
            Orphan::Object(key) => found.objects.push(key.to_owned()),
            Orphan::Upload(id) => found.uploads.push(id.to_owned()),
            Orphan::WorkingFile(path) => found.working_files.push(path.to_owned()),
        })
        .await
        .expect("the orphan scan");
    assert_eq!(
        (sweep.objects, sweep.uploads, sweep.working_files),
        (
            found.objects.len() as u64,
            found.uploads.len() as u64,
            found.working_files.len() as u64
        ),
        "the counts are what was handed over"
    );
    found
}
