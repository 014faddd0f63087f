//! Large files in parts: `POST /api/upload` starts a multipart upload, each part is a signed
//! `PUT` of its exact size, `POST /api/upload/{id}/parts` signs more (and lists what storage
//! holds), and `PUT /api/status` assembles the parts. Every test runs on both backends, as
//! `multipart::local::…` and `multipart::s3::…`: clients use the same code on either.

pub mod support;

use serde_json::{Value, json};

use crate::helpers::{
    Backend, assert_problem, assert_status, json_with_status, sample_file, spawn_app_with,
};
use support::{MIB, complete, download, put_part, sign_parts, small_parts, start, unquoted};

/// Runs each test body (an `async fn(Backend)`) once per backend, in modules `local` and `s3`;
/// `s3 = Variant;` first names the S3 store (default `Backend::S3`).
macro_rules! on_both_backends {
    (s3 = $s3:ident; $($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::helpers::Backend::Local).await
            })*
        }
        mod s3 {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::helpers::Backend::$s3).await
            })*
        }
    };
    ($($name:ident),* $(,)?) => {
        on_both_backends!(s3 = S3; $($name),*);
    };
}

// After the macro, which it uses.
pub mod part_checksums;

on_both_backends!(
    a_file_above_the_threshold_is_uploaded_in_parts_and_downloads_intact,
    an_upload_resumes_after_signing_only_its_first_parts,
    completing_with_wrong_or_missing_parts_returns_409_saying_what_is_wrong,
    a_part_of_another_size_than_signed_is_refused_by_storage,
    parts_are_chosen_by_size_or_when_asked,
    part_urls_are_signed_only_for_parts_that_exist,
);

async fn a_file_above_the_threshold_is_uploaded_in_parts_and_downloads_intact(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);

    let grant = start(&app, &bytes).await;
    let info = &grant["signed_info"];
    assert_eq!(info["method"], "MULTIPART");
    assert_eq!(
        (info["part_size"].as_u64(), info["part_count"].as_u64()),
        (Some(5 * MIB), Some(3))
    );
    let mut etags = Vec::new();
    for part in info["parts"].as_array().unwrap() {
        etags.push(json!({ "part_number": part["part_number"], "etag": put_part(&app, part, &bytes).await }));
    }
    let id = grant["asset_id"].as_str().unwrap();
    assert_status(complete(&app, id, json!(etags)).await, 200).await;

    assert_eq!(
        download(&app, id).await,
        bytes,
        "the assembled object is the file, byte for byte"
    );
}

async fn an_upload_resumes_after_signing_only_its_first_parts(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        small_parts(s);
        s.uploads.max_presigned_parts = 1;
    })
    .await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let first = &grant["signed_info"]["parts"][0];
    assert_eq!(
        grant["signed_info"]["parts"].as_array().unwrap().len(),
        1,
        "one URL at a time"
    );
    let first_etag = put_part(&app, first, &bytes).await;

    // The client crashed; it asks what storage holds and for the URLs it still needs.
    let mut etags = vec![json!({ "part_number": 1, "etag": first_etag })];
    for number in [2, 3] {
        let signed = sign_parts(&app, id, json!([number])).await;
        let first = signed["uploaded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["part_number"] == 1)
            .expect("storage reports the part uploaded before the crash");
        assert_eq!(first["size"], 5 * MIB, "{first}");
        // The S3 stand-in reports no part ETags (S3 itself does); the local backend does.
        if backend == Backend::Local {
            assert_eq!(
                first["etag"].as_str().map(unquoted),
                Some(unquoted(&first_etag)),
                "{first}"
            );
        }
        etags.push(json!({ "part_number": number, "etag": put_part(&app, &signed["parts"][0], &bytes).await }));
    }
    assert_status(complete(&app, id, json!(etags)).await, 200).await;
    assert_eq!(download(&app, id).await, bytes);
}

async fn completing_with_wrong_or_missing_parts_returns_409_saying_what_is_wrong(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let urls = grant["signed_info"]["parts"].as_array().unwrap();
    let (e1, e2) = (
        put_part(&app, &urls[0], &bytes).await,
        put_part(&app, &urls[1], &bytes).await,
    );
    let parts = |list: &[(u64, &str)]| {
        json!(
            list.iter()
                .map(|(n, e)| json!({ "part_number": n, "etag": e }))
                .collect::<Vec<_>>()
        )
    };

    let not_uploaded = complete(&app, id, parts(&[(1, &e1), (2, &e2), (3, &e2)])).await;
    let problem = assert_problem(not_uploaded, 409, "upload_mismatch").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("part 3 is not in storage"),
        "{problem}"
    );

    let e3 = put_part(&app, &urls[2], &bytes).await;
    let cases = [
        (
            parts(&[(1, &e1), (2, &e2)]),
            "missing parts: 3",
            "a part left out",
        ),
        (
            parts(&[(1, &e1), (2, &e2), (3, &e3), (4, &e3)]),
            "no such parts: 4",
            "a part that does not exist",
        ),
        (json!(null), "missing parts: 1, 2, 3", "no parts at all"),
        (
            parts(&[(1, &e1), (1, &e1), (2, &e2), (3, &e3)]),
            "listed twice",
            "a part listed twice",
        ),
    ];
    for (list, says, why) in cases {
        let problem = assert_problem(complete(&app, id, list).await, 409, "upload_mismatch").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{why}: {problem}"
        );
    }
    assert_status(
        complete(&app, id, parts(&[(1, &e1), (2, &e2), (3, &e3)])).await,
        200,
    )
    .await;
    assert_eq!(
        download(&app, id).await,
        bytes,
        "a refused completion leaves the upload usable"
    );
}

async fn a_part_of_another_size_than_signed_is_refused_by_storage(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    let part = &grant["signed_info"]["parts"][2]; // the 1 MiB last part
    for (size, why) in [(2 * MIB, "larger"), (MIB / 2, "smaller")] {
        let response = app
            .client
            .put(part["url"].as_str().unwrap())
            .body(vec![7u8; size as usize])
            .send()
            .await;
        // Storage may answer 4xx, or close the connection while a larger body still streams.
        if let Ok(response) = response {
            assert!(
                response.status().is_client_error(),
                "storage must refuse a {why} part: {}",
                response.status()
            );
        }
    }
    let signed = sign_parts(&app, id, json!([3])).await;
    assert_eq!(signed["uploaded"], json!([]), "no refused part is kept");
}

async fn parts_are_chosen_by_size_or_when_asked(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let cases = [
        (
            json!({ "content_length": 20 * MIB }),
            "MULTIPART",
            "above the threshold",
        ),
        (
            json!({ "content_length": MIB, "multipart": true }),
            "MULTIPART",
            "asked for",
        ),
        (
            json!({ "content_length": 20 * MIB, "multipart": false }),
            "PUT",
            "declined",
        ),
        (
            json!({ "content_length": MIB }),
            "PUT",
            "below the threshold",
        ),
    ];
    for (i, (mut body, method, why)) in cases.into_iter().enumerate() {
        body["object_key"] = json!(format!("chosen/{i}.bin"));
        let grant: Value = json_with_status(app.request_upload(&body).await, 201).await;
        assert_eq!(grant["signed_info"]["method"], method, "{why}");
    }
}

async fn part_urls_are_signed_only_for_parts_that_exist(backend: Backend) {
    let app = spawn_app_with(backend, small_parts).await;
    let bytes = sample_file((11 * MIB) as usize);
    let grant = start(&app, &bytes).await;
    let id = grant["asset_id"].as_str().unwrap();
    for (numbers, why) in [
        (json!([0]), "parts count from 1"),
        (json!([4]), "the upload has three parts"),
        (json!([1, 1]), "a part twice"),
    ] {
        let response = app
            .client
            .post(format!("{}/api/upload/{id}/parts", app.address))
            .json(&json!({ "part_numbers": numbers }))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], "part_numbers", "{why}");
    }
    let listing = sign_parts(&app, id, json!([])).await;
    assert_eq!(listing["parts"], json!([]), "an empty list signs nothing");
    assert_eq!(
        listing["uploaded"],
        json!([]),
        "and lists what storage holds"
    );
    assert_eq!(listing["max_parts_per_request"], 100, "the default limit");
    let single = app
        .new_upload(&json!({ "object_key": "small", "content_length": 10 }))
        .await;
    let response = app
        .client
        .post(format!(
            "{}/api/upload/{}/parts",
            app.address, single.asset_id
        ))
        .json(&json!({ "part_numbers": [1] }))
        .send()
        .await
        .unwrap();
    assert_problem(response, 409, "not_multipart").await;
}
