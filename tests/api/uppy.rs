//! The Uppy routes spoken as `@uppy/aws-s3` speaks them: v6's `companionEndpoint` mode with
//! the delegated upload token in the path, v5's `endpoint` mode with `Authorization`.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::tokens::{mint_upload_token, spawn_upload_token_app, token_for};
use crate::helpers::{Backend, TestApp, assert_problem, header, json_with_status, sample_file};

const MIB: usize = 1024 * 1024;

/// Uppy as a client of one endpoint.
struct Uppy<'a> {
    app: &'a TestApp,
    endpoint: String,
    authorization: Option<String>,
}

impl<'a> Uppy<'a> {
    /// v6: `companionEndpoint` is `/uppy/{token}`; no headers.
    fn v6(app: &'a TestApp, token: &str) -> Self {
        let endpoint = format!("{}/uppy/{token}", app.address);
        Self {
            app,
            endpoint,
            authorization: None,
        }
    }

    /// v5: `endpoint` is `/uppy`, with `headers: { authorization }`.
    fn v5(app: &'a TestApp, owner: &str) -> Self {
        Self {
            app,
            endpoint: format!("{}/uppy", app.address),
            authorization: Some(format!("Bearer {}", token_for(owner))),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}/s3{path}", self.endpoint);
        let request = self
            .app
            .client
            .request(method, url)
            .header("accept", "application/json");
        match &self.authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        }
    }

    async fn params(&self, filename: &str, metadata: &[(&str, &str)]) -> Response {
        let mut query = vec![
            ("filename".to_owned(), filename.to_owned()),
            ("type".to_owned(), "application/octet-stream".to_owned()),
        ];
        for (name, value) in metadata {
            query.push((format!("metadata[{name}]"), (*value).to_owned()));
        }
        let request = self.request(Method::GET, "/params").query(&query);
        request.send().await.expect("GET /s3/params")
    }

    async fn complete(&self, key: &str) -> Response {
        let request = self
            .request(Method::POST, "/complete")
            .query(&[("key", key)]);
        request.send().await.expect("POST /s3/complete")
    }

    async fn create_multipart(&self, filename: &str, size: usize) -> Response {
        let body = json!({
            "filename": filename,
            "type": "application/octet-stream",
            "metadata": { "name": filename, "size": size },
        });
        // Uppy 6 posts the JSON as a plain string body.
        let request = self
            .request(Method::POST, "/multipart")
            .body(body.to_string());
        request.send().await.expect("POST /s3/multipart")
    }

    async fn on_upload(&self, method: Method, path: &str, key: &str) -> Response {
        let request = self.request(method, &format!("/multipart/{path}"));
        let request = request.query(&[("key", key)]);
        request.send().await.expect("a multipart route")
    }

    async fn complete_multipart(&self, upload_id: &str, key: &str, parts: &Value) -> Response {
        let request = self
            .request(Method::POST, &format!("/multipart/{upload_id}/complete"))
            .query(&[("key", key)])
            .json(&json!({ "parts": parts }));
        request
            .send()
            .await
            .expect("POST /s3/multipart/{id}/complete")
    }
}

/// Sends the file as the plugin does: a `PUT` with the signed headers, or a form with every
/// field, then the file last.
async fn post_form(app: &TestApp, params: &Value, bytes: &[u8]) -> Response {
    let url = params["url"].as_str().unwrap();
    if params["method"] == "PUT" {
        let headers = params["headers"].as_object().expect("headers");
        let request = headers
            .iter()
            .fold(app.client.put(url), |request, (name, value)| {
                request.header(name, value.as_str().unwrap())
            });
        return request.body(bytes.to_vec()).send().await.unwrap();
    }
    let fields = params["fields"].as_object().expect("fields");
    let form = fields
        .iter()
        .fold(Form::new(), |form, (name, value)| {
            form.text(name.clone(), value.as_str().unwrap().to_owned())
        })
        .part("file", Part::bytes(bytes.to_vec()).file_name("upload.bin"));
    app.client.post(url).multipart(form).send().await.unwrap()
}

/// Downloads the asset `asset_id` of `owner` through `GET /api/access`.
async fn download(app: &TestApp, owner: &str, asset_id: &str) -> Vec<u8> {
    let asset_id: Uuid = asset_id.parse().unwrap();
    let access: Value = json_with_status(app.as_owner(owner).access(asset_id).await, 200).await;
    let response = app.download(access["url"].as_str().unwrap()).await;
    response.bytes().await.unwrap().to_vec()
}

/// Uploads `bytes` in parts as the plugin does; returns the upload's key and `complete`'s
/// answer.
async fn upload_in_parts(uppy: &Uppy<'_>, name: &str, bytes: &[u8]) -> (String, Response) {
    let created: Value =
        json_with_status(uppy.create_multipart(name, bytes.len()).await, 200).await;
    let (upload_id, key) = (
        created["uploadId"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    let mut parts = Vec::new();
    for (index, chunk) in bytes.chunks(5 * MIB).enumerate() {
        let number = index + 1;
        let signed = uppy
            .on_upload(Method::GET, &format!("{upload_id}/{number}"), key)
            .await;
        let signed: Value = json_with_status(signed, 200).await;
        let url = signed["url"].as_str().unwrap();
        let put = uppy.app.client.put(url).body(chunk.to_vec()).send().await;
        let put = put.unwrap();
        assert!(put.status().is_success(), "part {number}: {}", put.status());
        parts.push(json!({ "PartNumber": number, "ETag": header(&put, "etag") }));
    }
    let listed: Value =
        json_with_status(uppy.on_upload(Method::GET, upload_id, key).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), parts.len(), "{listed}");
    assert_eq!(listed[0]["Size"], 5 * MIB, "{listed}");
    let completed = uppy.complete_multipart(upload_id, key, &json!(parts)).await;
    (key.to_owned(), completed)
}

#[tokio::test]
async fn a_small_file_goes_by_post_form_and_completes_by_key_in_both_modes_on_both_backends() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_upload_token_app(backend).await;
        let token =
            mint_upload_token(&app, "alice", json!({ "object_key_prefix": "browser/" })).await;
        let bytes = sample_file(3210);

        for (mode, uppy, name, method) in [
            ("v6", Uppy::v6(&app, &token), "cat.bin", "POST"),
            ("v5", Uppy::v5(&app, "alice"), "dog.bin", "PUT"),
        ] {
            // Act
            let size = bytes.len().to_string();
            let params = uppy.params(name, &[("size", &size)]).await;
            let params: Value = json_with_status(params, 200).await;
            let stored = post_form(&app, &params, &bytes).await;
            let key = params["fields"]["key"].as_str().unwrap();
            let completed: Value = json_with_status(uppy.complete(key).await, 200).await;

            // Assert
            assert!(
                stored.status().is_success(),
                "{mode} {backend:?}: {}",
                stored.status()
            );
            assert_eq!(
                params["method"], method,
                "{mode}: a known size is PUT where it can be"
            );
            assert_eq!(completed["status"], "complete", "{mode} {backend:?}");
            let asset_id = completed["asset_id"].as_str().unwrap();
            let downloaded = download(&app, "alice", asset_id).await;
            assert_eq!(downloaded, bytes, "{mode} {backend:?}");
        }
        let assets: Value =
            json_with_status(app.as_owner("alice").get("/api/assets").await, 200).await;
        let keys: Vec<&str> = assets["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|asset| asset["object_key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["browser/cat.bin", "dog.bin"],
            "v6 puts names under the token's prefix"
        );
    }
}

#[tokio::test]
async fn a_multipart_upload_completes_verified_in_both_modes_on_both_backends() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_upload_token_app(backend).await;
        let token = mint_upload_token(&app, "alice", json!({})).await;
        let bytes = sample_file(5 * MIB + 1234);

        for (mode, uppy) in [
            ("v6", Uppy::v6(&app, &token)),
            ("v5", Uppy::v5(&app, "alice")),
        ] {
            // Act
            let (key, completed) = upload_in_parts(&uppy, &format!("{mode}.bin"), &bytes).await;

            // Assert
            let completed: Value = json_with_status(completed, 200).await;
            assert_eq!(completed["key"], key.as_str(), "{mode} {backend:?}");
            let location = completed["location"].as_str().unwrap();
            let asset_id = location.trim_start_matches("/api/assets/");
            assert_eq!(
                download(&app, "alice", asset_id).await,
                bytes,
                "{mode} {backend:?}"
            );
            let again = uppy.complete(&key).await;
            let again: Value = json_with_status(again, 200).await;
            assert_eq!(again["status"], "complete", "completing again is harmless");
        }
    }
}

#[tokio::test]
async fn a_file_over_the_token_size_limit_is_refused_with_a_message_uppy_shows() {
    for backend in [Backend::Local, Backend::S3] {
        // Arrange
        let app = spawn_upload_token_app(backend).await;
        let token = mint_upload_token(&app, "alice", json!({ "max_size": 1000 })).await;
        let uppy = Uppy::v6(&app, &token);

        // Act
        let declared = uppy.params("big.bin", &[("size", "2000")]).await;
        let undeclared = uppy.params("quiet.bin", &[]).await;
        let undeclared: Value = json_with_status(undeclared, 200).await;
        let stored = post_form(&app, &undeclared, &sample_file(2000)).await;
        let multipart = uppy.create_multipart("huge.bin", 6 * MIB).await;

        // Assert
        let problem = assert_problem(declared, 403, "token_scope").await;
        assert!(
            problem["message"].as_str().unwrap().contains("max_size"),
            "{problem}"
        );
        assert!(
            stored.status().is_client_error(),
            "{backend:?}: {}",
            stored.status()
        );
        let key = undeclared["fields"]["key"].as_str().unwrap();
        assert_problem(uppy.complete(key).await, 409, "upload_not_found").await;
        assert_problem(multipart, 403, "token_scope").await;
    }
}

#[tokio::test]
async fn another_owners_token_cannot_complete_list_or_abort_an_upload() {
    // Arrange
    let app = spawn_upload_token_app(Backend::S3).await;
    let alice = mint_upload_token(&app, "alice", json!({})).await;
    let bob = mint_upload_token(&app, "bob", json!({})).await;
    let alices_other = mint_upload_token(&app, "alice", json!({})).await;
    let uppy = Uppy::v6(&app, &alice);
    let created = uppy.create_multipart("a.bin", 1000).await;
    let created: Value = json_with_status(created, 200).await;
    let (upload_id, key) = (
        created["uploadId"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );

    for (who, token, status, code) in [
        ("another owner", &bob, 404, "asset_not_found"),
        (
            "another token of the owner",
            &alices_other,
            403,
            "token_scope",
        ),
    ] {
        // Act
        let intruder = Uppy::v6(&app, token);
        let listed = intruder.on_upload(Method::GET, upload_id, key).await;
        let signed = intruder
            .on_upload(Method::GET, &format!("{upload_id}/1"), key)
            .await;
        let aborted = intruder.on_upload(Method::DELETE, upload_id, key).await;
        let completed = intruder
            .complete_multipart(upload_id, key, &json!([]))
            .await;

        // Assert
        for (what, response) in [
            ("list", listed),
            ("sign", signed),
            ("abort", aborted),
            ("complete", completed),
        ] {
            let problem = assert_problem(response, status, code).await;
            assert!(problem["message"].is_string(), "{who} {what}: {problem}");
        }
    }
    let aborted = uppy.on_upload(Method::DELETE, upload_id, key).await;
    assert_eq!(json_with_status::<Value>(aborted, 200).await, json!({}));
    assert_eq!(
        app.assets_of("alice", "pending").await.0,
        0,
        "abort forgets the asset"
    );
}

#[tokio::test]
async fn a_name_already_complete_answers_409_and_a_bad_token_401() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(&app, "alice", json!({})).await;
    let uppy = Uppy::v6(&app, &token);
    let bytes = sample_file(100);
    let params: Value = json_with_status(uppy.params("a.bin", &[]).await, 200).await;
    post_form(&app, &params, &bytes).await;
    let key = params["fields"]["key"].as_str().unwrap();
    json_with_status::<Value>(uppy.complete(key).await, 200).await;

    // Act
    let again = uppy.params("a.bin", &[]).await;
    let forged = Uppy::v6(&app, "upl_forged").params("b.bin", &[]).await;
    let unknown = uppy.complete("uploads/nothing/here").await;

    // Assert
    let problem = assert_problem(again, 409, "upload_already_complete").await;
    assert_eq!(problem["message"], problem["detail"]);
    let problem = assert_problem(forged, 401, "unauthorized").await;
    assert!(problem["message"].is_string(), "{problem}");
    assert_problem(unknown, 404, "asset_not_found").await;
}

#[tokio::test]
async fn the_openapi_document_names_the_uppy_operations() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;

    // Act
    let document: Value = json_with_status(app.get("/openapi.json").await, 200).await;

    // Assert
    let paths = &document["paths"];
    for (path, method, id) in [
        ("/uppy/{token}/s3/params", "get", "uppyUploadParameters"),
        ("/uppy/{token}/s3/complete", "post", "uppyCompleteUpload"),
        ("/uppy/{token}/s3/multipart", "post", "uppyCreateMultipart"),
        (
            "/uppy/{token}/s3/multipart/{upload_id}",
            "get",
            "uppyListParts",
        ),
        (
            "/uppy/{token}/s3/multipart/{upload_id}",
            "delete",
            "uppyAbortMultipart",
        ),
        (
            "/uppy/{token}/s3/multipart/{upload_id}/complete",
            "post",
            "uppyCompleteMultipart",
        ),
        (
            "/uppy/{token}/s3/multipart/{upload_id}/{part_number}",
            "get",
            "uppySignPart",
        ),
    ] {
        assert_eq!(paths[path][method]["operationId"], id, "{method} {path}");
    }
}

#[tokio::test]
async fn an_empty_key_answers_400_on_every_route_that_reads_it_and_each_documents_400() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(&app, "alice", json!({})).await;
    let uppy = Uppy::v6(&app, &token);
    let document: Value = json_with_status(app.get("/openapi.json").await, 200).await;

    // Act
    let answers = [
        ("post", "/uppy/{token}/s3/complete", uppy.complete("").await),
        (
            "get",
            "/uppy/{token}/s3/multipart/{upload_id}",
            uppy.on_upload(Method::GET, "some-upload", "").await,
        ),
        (
            "delete",
            "/uppy/{token}/s3/multipart/{upload_id}",
            uppy.on_upload(Method::DELETE, "some-upload", "").await,
        ),
        (
            "get",
            "/uppy/{token}/s3/multipart/{upload_id}/{part_number}",
            uppy.on_upload(Method::GET, "some-upload/1", "").await,
        ),
        (
            "post",
            "/uppy/{token}/s3/multipart/{upload_id}/complete",
            uppy.complete_multipart("some-upload", "", &json!([])).await,
        ),
    ];

    // Assert: a generated client must be told this answer exists.
    for (method, path, response) in answers {
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], "key", "{method} {path}: {problem}");
        let responses = &document["paths"][path][method]["responses"];
        assert!(
            responses.get("400").is_some(),
            "{method} {path}: {responses}"
        );
    }
}

#[tokio::test]
async fn a_key_with_a_nul_byte_answers_400_not_500() {
    // Arrange
    let app = spawn_upload_token_app(Backend::Local).await;
    let token = mint_upload_token(&app, "alice", json!({})).await;
    let uppy = Uppy::v6(&app, &token);

    // Act: Postgres refuses a NUL in text, so it must not reach the query.
    let complete = uppy.complete("uploads/alice/\0").await;
    let list = uppy.on_upload(Method::GET, "some-upload", "a\0b").await;

    // Assert
    for response in [complete, list] {
        let problem = assert_problem(response, 400, "validation_failed").await;
        assert_eq!(problem["field"], "key", "{problem}");
    }
}
