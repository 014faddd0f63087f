//! Every read and write is scoped to the caller: another owner's asset looks exactly like a
//! missing one, and each owner's objects live under a storage prefix of its own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::tokens::use_jwt;
use crate::helpers::{
    AccessGrant, Backend, SignedInfo, UploadGrant, assert_problem, json_with_status, sample_file,
    spawn_app_with,
};

/// The 404 body with the asset id taken out, so answers about different ids compare equal.
async fn not_found_body(response: Response, id: Uuid) -> Value {
    let mut problem = assert_problem(response, 404, "asset_not_found").await;
    let detail = problem["detail"]
        .as_str()
        .unwrap()
        .replace(&id.to_string(), "<id>");
    problem["detail"] = detail.into();
    problem
}

#[tokio::test]
async fn another_owners_asset_is_indistinguishable_from_a_missing_one() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;
    let (alice, bob) = (app.as_owner("alice"), app.as_owner("bob"));
    let complete = alice.store("done.txt", b"alice's bytes").await.asset_id;
    let pending = alice
        .new_upload(&json!({ "object_key": "pending.txt" }))
        .await
        .asset_id;
    let missing = Uuid::new_v4();
    let expected = not_found_body(bob.access(missing).await, missing).await;

    // Act
    let answers = [
        (
            bob.access(complete).await,
            complete,
            "reading a complete asset",
        ),
        (
            bob.access(pending).await,
            pending,
            "reading a pending asset",
        ),
        (
            bob.mark_status(pending, "complete").await,
            pending,
            "completing a pending asset",
        ),
        (
            bob.mark_status(complete, "pending").await,
            complete,
            "reverting a complete asset",
        ),
        (
            bob.mark_status(missing, "complete").await,
            missing,
            "completing a missing asset",
        ),
    ];

    // Assert
    for (response, id, attempt) in answers {
        assert_eq!(not_found_body(response, id).await, expected, "{attempt}");
    }
    let still_pending = alice.access(pending).await;
    assert_problem(still_pending, 409, "asset_not_complete").await;
    let _: AccessGrant = json_with_status(alice.access(complete).await, 200).await;
}

#[tokio::test]
async fn requesting_another_owners_object_key_creates_the_callers_own_asset() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;
    let (alice, bob) = (app.as_owner("alice"), app.as_owner("bob"));
    let pending = json!({ "object_key": "shared/pending.pdf", "content_length": 5 });
    let alices_pending = alice.new_upload(&pending).await;
    let alices_complete = alice.store("shared/final.txt", b"final").await;

    // Act
    let bobs_pending = bob.request_upload(&pending).await;
    let bobs_final = bob
        .request_upload(&json!({ "object_key": "shared/final.txt" }))
        .await;

    // Assert
    let bobs_pending: UploadGrant = json_with_status(bobs_pending, 201).await;
    let bobs_final: UploadGrant = json_with_status(bobs_final, 201).await;
    assert_ne!(bobs_pending.asset_id, alices_pending.asset_id);
    assert_ne!(bobs_final.asset_id, alices_complete.asset_id);
    let reissued: UploadGrant = json_with_status(alice.request_upload(&pending).await, 200).await;
    assert_eq!(
        reissued.asset_id, alices_pending.asset_id,
        "alice's asset is untouched"
    );
    assert_eq!(app.assets_of("alice", "pending").await.0, 1);
    assert_eq!(app.assets_of("bob", "pending").await.0, 2);
}

#[tokio::test]
async fn two_owners_can_store_the_same_object_key_under_different_storage_keys() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_app_with(backend, use_jwt).await;
        let (alice, bob) = (app.as_owner("alice"), app.as_owner("bob"));

        // Act
        let alices = alice.store("avatar.png", b"alice's avatar").await;
        let bobs = bob.store("avatar.png", b"bob's avatar").await;

        // Assert
        let (to_alice, to_bob) = (
            destination(&alices.signed_info),
            destination(&bobs.signed_info),
        );
        assert!(
            to_alice.contains("/uploads/alice/"),
            "{backend:?}: {to_alice}"
        );
        assert!(to_bob.contains("/uploads/bob/"), "{backend:?}: {to_bob}");
        for (caller, grant, bytes) in [(&alice, alices, "alice's"), (&bob, bobs, "bob's")] {
            let access: AccessGrant =
                json_with_status(caller.access(grant.asset_id).await, 200).await;
            let downloaded = app.download(&access.url).await.bytes().await.unwrap();
            assert_eq!(
                downloaded,
                format!("{bytes} avatar").as_bytes(),
                "{backend:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_owner_whose_sub_names_a_path_stays_inside_its_own_prefix() {
    // Arrange
    let app = spawn_app_with(Backend::Local, use_jwt).await;
    let owners = [
        (
            "../escape",
            "%2E%2E%2Fescape",
            "'..' must not climb out of uploads/",
        ),
        ("..", "%2E%2E", "'..' alone names the parent directory"),
        ("a/b", "a%2Fb", "a '/' would nest one owner inside another"),
        (
            "a%2Fb",
            "a%252Fb",
            "an encoded-looking name must not collide with a/b",
        ),
        (
            "/etc",
            "%2Fetc",
            "a leading '/' must not make the key absolute",
        ),
    ];
    let file = sample_file(64);

    // object_store's LocalFileSystem writes a '%' of a key as "%25" in the file name.
    let on_disk = |segment: &str| format!("assets/uploads/{}/", segment.replace('%', "%25"));

    // Act
    let mut expected = BTreeSet::new();
    for (sub, segment, _) in owners {
        let grant = app.as_owner(sub).store("f.txt", &file).await;
        let object = format!("{}{}/f.txt", on_disk(segment), grant.asset_id);
        // Each upload's record (size, SHA-256) mirrors the object's path under `~records`.
        expected.insert(object.replacen("assets/", "assets/~records/", 1));
        expected.insert(object);
    }

    // Assert: besides the assets and their records, only the store's marker (see
    // `store_identity`).
    expected.insert("assets/uploads/.store-id".to_owned());
    let stored = files_under(app.local_root());
    for (sub, segment, reason) in owners {
        let inside = |path: &String| path.starts_with(&on_disk(segment));
        assert!(
            stored.iter().any(inside),
            "{sub:?} → {segment}: {reason}; stored: {stored:#?}"
        );
    }
    assert_eq!(stored, expected, "nothing is stored anywhere else");
}

/// Where a signed request puts the object: its URL, and the form's `key` for a POST.
fn destination(signed: &SignedInfo) -> String {
    match signed {
        SignedInfo::Put { url, .. } => url.clone(),
        SignedInfo::Post { url, fields } => format!("{url}/{}", fields["key"]),
    }
}

/// Every file under `root`, as `/`-separated paths relative to it.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut pending: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("listing the storage root") {
            let path = entry.expect("reading a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().components();
                let parts: Vec<String> = relative
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                files.insert(parts.join("/"));
            }
        }
    }
    files
}
