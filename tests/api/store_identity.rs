//! Store identity: a database records the store its assets live in, the store holds the same
//! id in its marker, and a server pointed at any other store refuses to become ready.

mod marker;
mod support;

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{Backend, json_with_status, new_database, sample_file};
use support::{MARKER, Store, assert_ready, assert_refused, connect, id_of, recorded, start};

#[tokio::test]
async fn a_first_start_records_the_store_and_writes_its_marker() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let (store, database) = (Store::new(backend), new_database().await);

        // Act
        let (app, settings) = start(&store, &database, |_| {}).await;

        // Assert
        assert_ready(&app, "a new store").await;
        let marker = store.marker(&settings, MARKER).await.expect("a marker");
        assert_eq!(
            recorded(&database).await,
            Some(id_of(&marker)),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_restart_on_the_same_store_is_ready_and_serves_its_assets() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let (store, database) = (Store::new(backend), new_database().await);
        let (first, _) = start(&store, &database, |_| {}).await;
        let asset = first.store("kept.bin", &sample_file(32)).await;
        drop(first);

        // Act
        let (second, _) = start(&store, &database, |_| {}).await;

        // Assert
        assert_ready(&second, "the same store").await;
        let grant: Value = json_with_status(second.access(asset, None).await, 200).await;
        let url = grant["url"].as_str().expect("a download URL");
        let downloaded = second.download(url).await;
        assert_eq!(
            downloaded.bytes().await.unwrap(),
            sample_file(32),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn another_store_under_the_same_database_is_refused() {
    // (backend, why, same bucket with another key prefix)
    let cases = [
        (Backend::Local, "a new empty local root", false),
        (Backend::S3, "another bucket", false),
        (Backend::S3, "another key prefix in the same bucket", true),
    ];
    for (backend, why, other_prefix) in cases {
        // Arrange
        let (store, database) = (Store::new(backend), new_database().await);
        let (first, _) = start(&store, &database, |_| {}).await;
        first.store("existing.bin", &sample_file(8)).await;
        let recorded_before = recorded(&database).await;
        let other = Store::new(backend);
        let target = if other_prefix { &store } else { &other };

        // Act
        let (second, settings) = start(target, &database, |s| {
            if other_prefix {
                s.storage.key_prefix = "elsewhere".into();
            }
        })
        .await;

        // Assert
        assert_refused(&second, why).await;
        assert_eq!(
            recorded(&database).await,
            recorded_before,
            "{why}: the record stays"
        );
        let assets: i64 = connect(&database)
            .await
            .query_one("SELECT count(*) FROM assets", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(assets, 1, "{why}: a refused upload leaves no record");
        let prefix = &settings.storage.key_prefix;
        let marker = target
            .marker(&settings, &format!("{prefix}/.store-id"))
            .await;
        assert!(marker.is_none(), "{why}: a refused store is not marked");
    }
}

#[tokio::test]
async fn adopting_another_store_makes_it_ready() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let (store, database) = (Store::new(backend), new_database().await);
        let (_first, _) = start(&store, &database, |_| {}).await;
        let old = recorded(&database).await.expect("an id");
        let replacement = Store::new(backend);

        // Act
        let (adopting, settings) =
            start(&replacement, &database, |s| s.storage.adopt_store = true).await;

        // Assert
        assert_ready(&adopting, "adopted").await;
        let marker = replacement
            .marker(&settings, MARKER)
            .await
            .expect("the replacement is marked");
        let new = recorded(&database).await.expect("an id");
        assert_eq!(
            new,
            id_of(&marker),
            "{backend:?}: the database records the replacement"
        );
        assert_ne!(new, old, "{backend:?}: the replacement is another store");
        drop(adopting);
        let (restarted, _) = start(&replacement, &database, |_| {}).await;
        assert_ready(&restarted, "restarted without adoption").await;
        let (back, _) = start(&store, &database, |_| {}).await;
        assert_refused(&back, "the old store is no longer the recorded one").await;
    }
}

#[tokio::test]
async fn an_empty_database_adopts_any_store() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange: a store marked by another database, and an upgraded one without a marker.
        let store = Store::new(backend);
        let (first, settings) = start(&store, &new_database().await, |_| {}).await;
        let marked = id_of(&store.marker(&settings, MARKER).await.unwrap());
        let unmarked = Store::new(backend);
        let (empty, also_empty) = (new_database().await, new_database().await);

        // Act
        let (adopter, _) = start(&store, &empty, |_| {}).await;
        let (upgraded, settings) = start(&unmarked, &also_empty, |_| {}).await;

        // Assert
        assert_ready(&adopter, "an empty database with a marked store").await;
        assert_eq!(recorded(&empty).await, Some(marked), "{backend:?}");
        assert_ready(&upgraded, "an empty database with an unmarked store").await;
        let written = id_of(
            &unmarked
                .marker(&settings, MARKER)
                .await
                .expect("marked now"),
        );
        assert_eq!(recorded(&also_empty).await, Some(written), "{backend:?}");
        drop(first);
    }
}

#[tokio::test]
async fn servers_starting_together_on_an_empty_database_agree_on_one_id() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let (store, database) = (Store::new(backend), new_database().await);

        // Act
        let apps = join_all((0..4).map(|_| start(&store, &database, |_| {}))).await;

        // Assert
        let settings = &apps[0].1;
        let marker = id_of(&store.marker(settings, MARKER).await.expect("a marker"));
        assert_eq!(recorded(&database).await, Some(marker), "{backend:?}");
        for (app, _) in &apps {
            assert_ready(app, "started together").await;
        }
    }
}
