//! Delegated upload tokens: an owner mints one for a browser; the browser can upload within
//! its scope and read back only what it uploaded.

use serde_json::{Value, json};

use crate::helpers::tokens::{
    mint_upload_token, spawn_upload_token_app, token_for, use_api_keys, use_jwt, use_upload_tokens,
};
use crate::helpers::{
    Backend, assert_problem, assert_status, assert_success, json_with_status, sample_file,
    spawn_app_with,
};

#[tokio::test]
async fn a_token_uploads_completes_and_reads_back_its_own_asset_on_both_backends() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_upload_token_app(backend).await;
        let response = app
            .as_owner("alice")
            .post_json(
                "/api/upload-tokens",
                &json!({ "expires_in": 300, "object_key_prefix": "browser/", "max_uploads": 3 }),
            )
            .await;
        let minted: Value = json_with_status(response, 201).await;
        let browser = app.with_bearer(minted["token"].as_str().unwrap());
        let bytes = sample_file(4321);

        // Act
        let grant = browser
            .new_upload(&json!({ "object_key": "browser/a.bin", "content_length": bytes.len() }))
            .await;
        assert_success(app.upload_file(&grant.signed_info, &bytes).await).await;
        let completed = browser.mark_status(grant.asset_id, "complete").await;
        let access: Value = json_with_status(browser.access(grant.asset_id).await, 200).await;
        let downloaded = app.download(access["url"].as_str().unwrap()).await;
        let metadata = browser
            .get(&format!("/api/assets/{}", grant.asset_id))
            .await;

        // Assert
        assert_eq!(minted["owner"], "alice");
        assert_eq!(minted["scope"]["object_key_prefix"], "browser/");
        assert_status(completed, 200).await;
        assert_eq!(downloaded.bytes().await.unwrap().as_ref(), bytes.as_slice());
        assert_status(metadata, 200).await;
        let (count, _) = app.assets_of("alice", "complete").await;
        assert_eq!(
            count, 1,
            "the asset belongs to the token's owner ({backend:?})"
        );
    }
}

#[tokio::test]
async fn uploads_outside_the_scope_answer_403_token_scope() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(
        &app,
        "alice",
        json!({ "object_key_prefix": "u/", "max_size": 100, "allowed_content_types": ["image/*"] }),
    )
    .await;
    let browser = app.with_bearer(&token);
    let cases = [
        (
            json!({ "object_key": "other/a.png", "content_type": "image/png" }),
            "another prefix",
        ),
        (
            json!({ "object_key": "u/a.png", "content_type": "image/png", "content_length": 101 }),
            "larger than max_size",
        ),
        (
            json!({ "object_key": "u/a.pdf", "content_type": "application/pdf" }),
            "another type",
        ),
        (json!({ "object_key": "u/a.png" }), "no type declared"),
    ];

    for (body, why) in cases {
        // Act
        let response = browser.request_upload(&body).await;

        // Assert
        let problem = assert_problem(response, 403, "token_scope").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{why}");
    }
    let allowed = browser
        .request_upload(
            &json!({ "object_key": "u/a.png", "content_type": "image/png", "content_length": 100 }),
        )
        .await;
    assert_status(allowed, 201).await;
}

#[tokio::test]
async fn max_uploads_counts_new_uploads_but_not_re_issues() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let browser_token = mint_upload_token(&app, "alice", json!({ "max_uploads": 2 })).await;
    let browser = app.with_bearer(&browser_token);
    let upload = |key: &str| json!({ "object_key": key, "content_length": 5 });

    // Act
    let first = browser.request_upload(&upload("a")).await;
    let again = browser.request_upload(&upload("a")).await;
    let second = browser.request_upload(&upload("b")).await;
    let third = browser.request_upload(&upload("c")).await;

    // Assert
    assert_status(first, 201).await;
    assert_status(again, 200).await;
    assert_status(second, 201).await;
    assert_problem(third, 403, "token_scope").await;
}

#[tokio::test]
async fn a_token_cannot_touch_the_owners_other_assets_or_another_tokens() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let owners_own = app.as_owner("alice").store("mine.bin", b"owner").await;
    let first = app
        .with_bearer(&mint_upload_token(&app, "alice", json!({})).await)
        .store("t1.bin", b"one")
        .await;
    let second_token = mint_upload_token(&app, "alice", json!({})).await;
    let second = app.with_bearer(&second_token);
    let mine = second.store("t2.bin", b"two").await;

    // Act / Assert: another token's and the owner's assets are out of scope…
    for id in [owners_own.asset_id, first.asset_id] {
        assert_problem(second.access(id).await, 403, "token_scope").await;
        assert_problem(
            second.get(&format!("/api/assets/{id}")).await,
            403,
            "token_scope",
        )
        .await;
        assert_problem(second.mark_status(id, "complete").await, 403, "token_scope").await;
        let delete = second.delete(&format!("/api/assets/{id}")).await;
        assert_problem(delete, 403, "token_scope").await;
    }
    // …the owner's key cannot be taken over by re-issuing it…
    let takeover = second
        .request_upload(&json!({ "object_key": "mine.bin" }))
        .await;
    assert_problem(takeover, 409, "upload_already_complete").await;
    app.as_owner("alice")
        .new_upload(&json!({ "object_key": "pending.bin" }))
        .await;
    let takeover = second
        .request_upload(&json!({ "object_key": "pending.bin" }))
        .await;
    assert_problem(takeover, 403, "token_scope").await;
    // …and the listing holds only the token's own asset.
    let page: Value = json_with_status(second.get("/api/assets").await, 200).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asset_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.asset_id.to_string()]);
    // Another owner's assets stay invisible as ever.
    let bobs = app.as_owner("bob").store("b.bin", b"bob").await;
    assert_problem(second.access(bobs.asset_id).await, 404, "asset_not_found").await;
}

#[tokio::test]
async fn a_token_aborts_its_pending_uploads_but_cannot_delete_complete_assets() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(&app, "alice", json!({})).await;
    let browser = app.with_bearer(&token);
    let pending = browser
        .new_upload(&json!({ "object_key": "p.bin", "content_length": 3 }))
        .await;
    let complete = browser.store("c.bin", b"abc").await;

    // Act
    let aborted = browser
        .delete(&format!("/api/assets/{}", pending.asset_id))
        .await;
    let deleted = browser
        .delete(&format!("/api/assets/{}", complete.asset_id))
        .await;

    // Assert
    assert_status(aborted, 204).await;
    assert_problem(deleted, 403, "token_scope").await;
}

#[tokio::test]
async fn tokens_cannot_mint_tokens_and_forged_ones_are_refused() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(&app, "alice", json!({})).await;
    let mut forged = token.clone();
    forged.insert(forged.len() - 3, 'x');

    // Act
    let nested = app
        .with_bearer(&token)
        .post_json("/api/upload-tokens", &json!({}))
        .await;
    let refused = app
        .with_bearer(&forged)
        .request_upload(&json!({ "object_key": "a" }))
        .await;
    let identity_token_still_works = app
        .with_bearer(&token_for("alice"))
        .request_upload(&json!({ "object_key": "a" }))
        .await;

    // Assert
    assert_problem(nested, 403, "token_scope").await;
    assert_problem(refused, 401, "unauthorized").await;
    assert_status(identity_token_still_works, 201).await;
}

#[tokio::test]
async fn minting_checks_what_is_asked_for() {
    let app = spawn_upload_token_app(Backend::Local).await;
    let cases = [
        (json!({ "expires_in": 0 }), "expires_in"),
        (json!({ "expires_in": 3601 }), "expires_in"),
        (json!({ "max_uploads": 0 }), "max_uploads"),
        (json!({ "max_size": 0 }), "max_size"),
        (json!({ "object_key_prefix": "/abs" }), "object_key_prefix"),
        (
            json!({ "allowed_content_types": ["image"] }),
            "allowed_content_types",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .as_owner("alice")
            .post_json("/api/upload-tokens", &body)
            .await;
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], field, "{body}");
    }
    let unknown = app
        .as_owner("alice")
        .post_json("/api/upload-tokens", &json!({ "max_upload": 1 }))
        .await;
    let problem = assert_problem(unknown, 400, "validation_failed").await;
    assert_eq!(problem["field"], "max_upload", "a typo is named");
}

#[tokio::test]
async fn a_token_minted_with_an_api_key_works_in_api_key_mode() {
    // Arrange
    let app = spawn_app_with(Backend::Local, |settings| {
        use_api_keys(settings, &[("alice", "alice-key")]);
        use_upload_tokens(settings);
    })
    .await;
    let response = app
        .with_api_key("alice-key")
        .post_json("/api/upload-tokens", &json!({}))
        .await;
    let minted: Value = json_with_status(response, 201).await;

    // Act
    let grant = app
        .with_bearer(minted["token"].as_str().unwrap())
        .request_upload(&json!({ "object_key": "k.bin" }))
        .await;

    // Assert
    assert_status(grant, 201).await;
    assert_eq!(app.assets_of("alice", "pending").await.0, 1);
}

#[tokio::test]
async fn without_a_key_tokens_are_disabled_outside_development() {
    let app = spawn_app_with(Backend::Local, |settings| {
        use_jwt(settings);
        settings.profile = "staging".into();
    })
    .await;
    let response = app
        .as_owner("alice")
        .post_json("/api/upload-tokens", &json!({}))
        .await;
    assert_problem(response, 403, "upload_tokens_disabled").await;
}

#[tokio::test]
async fn replicas_sharing_the_key_accept_each_others_tokens() {
    let first = spawn_upload_token_app(Backend::Local).await;
    let second = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(&first, "alice", json!({})).await;
    let response = second
        .with_bearer(&token)
        .request_upload(&json!({ "object_key": "x", "content_length": 1 }))
        .await;
    assert_status(response, 201).await;
}
