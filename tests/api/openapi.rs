//! The OpenAPI document as generated clients read it: short operation ids, only the statuses
//! the server answers, the bounds it enforces, and every route it serves.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, json_with_status, spawn_app};

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

/// The operations of the API's own routes: `/api/…` but the storage notifications, whose
/// senders (S3, MinIO, EventBridge) are not ours to hold to a parameter list. The Uppy routes
/// are left out too: Uppy sends `metadata[…]` parameters of its users' choosing.
fn own_operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") || path == "/api/storage-events" {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            operations.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    operations
}

/// A value the parameter's schema allows: its first enum value, its minimum, a UUID, or text.
fn sample(document: &Value, schema: &Value) -> String {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        return sample(document, &document["components"]["schemas"][name]);
    }
    for choice in ["oneOf", "anyOf"] {
        if let Some(first) = schema[choice]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["type"] != "null"))
        {
            return sample(document, first);
        }
    }
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.as_str().unwrap().to_owned();
    }
    if schema["type"] == "integer" {
        return schema["minimum"].as_u64().unwrap_or(1).to_string();
    }
    if schema["format"] == "uuid" {
        return Uuid::new_v4().to_string();
    }
    "a".to_owned()
}

async fn send(app: &TestApp, method: &str, path: &str, query: &[(String, String)]) -> Value {
    // Path parameters get a UUID: an unknown asset at worst, never a parse error of the path.
    let mut url = format!("{}{path}", app.address);
    while let (Some(start), Some(end)) = (url.find('{'), url.find('}')) {
        url.replace_range(start..=end, &Uuid::new_v4().to_string());
    }
    let request = app
        .client
        .request(method.to_uppercase().parse().unwrap(), url)
        .query(query);
    let request = if method == "get" || method == "delete" {
        request
    } else {
        request.json(&json!({}))
    };
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.unwrap_or(Value::Null);
    body["status"] = status.into();
    body
}

#[tokio::test]
async fn every_documented_query_parameter_is_accepted_and_an_undocumented_one_refused() {
    let app = spawn_app(Backend::Local).await;
    let document = json_with_status(app.get("/openapi.json").await, 200).await;
    let operations = own_operations(&document);
    assert!(operations.len() >= 7, "{operations:?}");
    for (path, method, operation) in operations {
        let documented: Vec<&Value> = operation["parameters"]
            .as_array()
            .map(|all| all.iter().filter(|p| p["in"] == "query").collect())
            .unwrap_or_default();
        let required: Vec<(String, String)> = documented
            .iter()
            .filter(|p| p["required"] == true)
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    sample(&document, &p["schema"]),
                )
            })
            .collect();

        for parameter in &documented {
            let name = parameter["name"].as_str().unwrap();
            let mut query = required.clone();
            if !query.iter().any(|(n, _)| n == name) {
                query.push((name.to_owned(), sample(&document, &parameter["schema"])));
            }
            let answer = send(&app, &method, &path, &query).await;
            let detail = answer["detail"].as_str().unwrap_or_default();
            assert!(
                !detail.contains("is not a parameter"),
                "{method} {path} refused its documented `{name}`: {answer}"
            );
            if name != "cursor" {
                // Any value its schema allows is taken (a cursor comes only from a page).
                assert_ne!(
                    answer["field"], name,
                    "{method} {path} refused a value its schema allows for `{name}`: {answer}"
                );
            }
        }

        let mut query = required.clone();
        query.push(("limt".to_owned(), "5".to_owned()));
        let answer = send(&app, &method, &path, &query).await;
        assert_eq!(
            answer["status"], 400,
            "{method} {path} took `limt`: {answer}"
        );
        assert_eq!(
            answer["code"], "validation_failed",
            "{method} {path}: {answer}"
        );
        assert_eq!(answer["field"], "limt", "{method} {path}: {answer}");
    }
}

#[tokio::test]
async fn every_guarded_operation_documents_the_guards_problems() {
    let document = document(Backend::Local).await;
    let mut guarded = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let is_guarded = (path.starts_with("/api/") && path != "/api/storage-events")
            || path.starts_with("/uppy/");
        if !is_guarded {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            guarded += 1;
            for status in ["401", "429", "503"] {
                let response = &operation["responses"][status];
                assert!(
                    response["content"]["application/problem+json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|r| r.ends_with("/ProblemDetails")),
                    "{method} {path} documents no {status} problem: {response}"
                );
            }
        }
    }
    assert!(guarded >= 14, "only {guarded} guarded operations");
}

#[tokio::test]
async fn enums_ids_and_times_are_typed_in_the_schema() {
    let document = document(Backend::Local).await;
    let info = &document["components"]["schemas"]["AssetInfo"]["properties"];
    assert_eq!(info["asset_id"]["format"], "uuid", "{info}");
    assert_eq!(info["created_at"]["format"], "date-time", "{info}");
    let status = &document["components"]["schemas"]["AssetStatus"];
    assert_eq!(status["enum"], json!(["pending", "complete"]), "{status}");
    let access = document["paths"]["/api/access"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "asset_id")
        .cloned()
        .unwrap();
    assert_eq!(access["schema"]["format"], "uuid", "{access}");
    assert_eq!(access["required"], true, "{access}");
}
