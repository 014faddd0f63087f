//! The OpenAPI document as generated clients read it: short operation ids, only the statuses
//! the server answers, the bounds it enforces, and every route it serves.

use serde_json::Value;

use crate::helpers::{Backend, json_with_status, spawn_app};

async fn document(backend: Backend) -> Value {
    let app = spawn_app(backend).await;
    json_with_status(app.get("/openapi.json").await, 200).await
}

#[tokio::test]
async fn every_operation_has_a_short_camel_case_id() {
    let document = document(Backend::Local).await;
    let expected = [
        ("/api/upload", "post", "issueUpload"),
        ("/api/status", "put", "completeUpload"),
        ("/api/access", "get", "issueAccess"),
        ("/api/assets", "get", "listAssets"),
        ("/api/assets/{asset_id}", "get", "getAsset"),
        ("/api/assets/{asset_id}", "delete", "deleteAsset"),
        ("/api/upload/{asset_id}/parts", "post", "signParts"),
        ("/storage/{bucket}/{key}", "put", "putObject"),
        ("/storage/{bucket}/{key}", "get", "getObject"),
        ("/metrics", "get", "metrics"),
        ("/healthz", "get", "liveness"),
        ("/readyz", "get", "readiness"),
    ];
    for (path, method, id) in expected {
        assert_eq!(
            document["paths"][path][method]["operationId"], id,
            "{method} {path}"
        );
    }
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path} has the id {id:?}"
            );
        }
    }
}

#[tokio::test]
async fn delete_documents_204_and_no_200() {
    let document = document(Backend::Local).await;
    let responses = &document["paths"]["/api/assets/{asset_id}"]["delete"]["responses"];
    assert!(responses.get("204").is_some(), "{responses}");
    assert!(responses.get("200").is_none(), "{responses}");
}

#[tokio::test]
async fn lifetimes_and_page_sizes_carry_the_bounds_the_server_enforces() {
    let document = document(Backend::Local).await;
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["UploadRequest"]["properties"]["expires_in"]["minimum"],
        1
    );
    assert_eq!(
        schemas["UploadRequest"]["properties"]["object_key"]["maxLength"],
        1024
    );
    let parameter = |path: &str, method: &str, name: &str| -> Value {
        document["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{method} {path} documents no {name}"))
    };
    let limit = parameter("/api/assets", "get", "limit");
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    assert_eq!(limit["schema"]["maximum"], 1000, "{limit}");
    let expires_in = parameter("/api/access", "get", "expires_in");
    assert_eq!(expires_in["schema"]["minimum"], 1, "{expires_in}");
}

#[tokio::test]
async fn the_local_storage_routes_are_documented_only_where_they_are_served() {
    let local = document(Backend::Local).await;
    let s3 = document(Backend::S3).await;
    let storage = "/storage/{bucket}/{key}";
    assert!(local["paths"].get(storage).is_some());
    assert!(s3["paths"].get(storage).is_none());
    let names: Vec<&str> = local["paths"][storage]["put"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["bucket", "key"],
        "path parameters match the template"
    );
}

#[tokio::test]
async fn signed_info_is_one_of_three_shapes_told_apart_by_method() {
    let document = document(Backend::S3).await;
    let signed = &document["components"]["schemas"]["SignedInfo"];
    assert_eq!(
        signed["discriminator"]["propertyName"], "method",
        "{signed}"
    );
    let shapes = signed["oneOf"].as_array().expect("a oneOf");
    let text = serde_json::to_string(shapes).unwrap();
    for method in ["\"PUT\"", "\"POST\"", "\"MULTIPART\""] {
        assert!(text.contains(method), "{method} missing from {text}");
    }
    assert_eq!(shapes.len(), 3);
    assert!(!text.contains("\"null\""), "no shape is null: {text}");
}
