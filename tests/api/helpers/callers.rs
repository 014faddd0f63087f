//! [`Caller`]: the API requests of [`TestApp`] sent with headers of a client's own
//! (credentials, `X-Forwarded-For`), and what the test's database and storage directory hold.
//! Storage requests never carry these headers: signed URLs must go out exactly as signed.

use std::path::Path;

use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::{TestApp, UploadGrant, assert_status, assert_success, json_with_status, tokens};

/// A client that sends its headers with every API request.
pub struct Caller<'a> {
    app: &'a TestApp,
    headers: Vec<(String, String)>,
}

impl TestApp {
    /// A client whose requests carry every `(name, value)` of `headers`.
    pub fn with_headers(&self, headers: &[(&str, &str)]) -> Caller<'_> {
        let headers = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Caller { app: self, headers }
    }

    /// A client sending `Authorization: Bearer <token>`.
    pub fn with_bearer(&self, token: &str) -> Caller<'_> {
        self.with_headers(&[("authorization", &format!("Bearer {token}"))])
    }

    /// A client acting for `owner` with a valid token (see [`tokens::use_jwt`]).
    pub fn as_owner(&self, owner: &str) -> Caller<'_> {
        self.with_bearer(&tokens::token_for(owner))
    }

    /// A client sending `X-Api-Key: <key>`.
    pub fn with_api_key(&self, key: &str) -> Caller<'_> {
        self.with_headers(&[("x-api-key", key)])
    }

    /// The local backend's storage root (`storage.local.root`).
    pub fn local_root(&self) -> &Path {
        self.local_root
            .as_deref()
            .expect("only the local backend has a storage root")
    }

    /// A connection of the test's own to its database.
    pub async fn database(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, NoTls)
            .await
            .expect("connecting to the test database");
        tokio::spawn(connection);
        client
    }

    /// How many of `owner`'s assets have `status`, and the sum of their declared lengths.
    pub async fn assets_of(&self, owner: &str, status: &str) -> (i64, i64) {
        let row = self
            .database()
            .await
            .query_one(
                "SELECT count(*), coalesce(sum(content_length), 0)::bigint FROM assets \
                 WHERE owner = $1 AND status = $2",
                &[&owner, &status],
            )
            .await
            .expect("counting assets");
        (row.get(0), row.get(1))
    }
}

impl Caller<'_> {
    /// `POST /api/upload` with a JSON body.
    pub async fn request_upload(&self, body: &Value) -> Response {
        let request = self.app.client.post(self.app.url("/api/upload")).json(body);
        self.send(request).await
    }

    /// Requests an upload that must be granted as a new asset (201).
    pub async fn new_upload(&self, body: &Value) -> UploadGrant {
        json_with_status(self.request_upload(body).await, 201).await
    }

    /// `PUT /api/status`.
    pub async fn mark_status(&self, asset_id: Uuid, status: &str) -> Response {
        let body = json!({ "asset_id": asset_id, "uploaded_status": status });
        let request = self.app.client.put(self.app.url("/api/status")).json(&body);
        self.send(request).await
    }

    /// `GET /api/access` with the server's default expiry.
    pub async fn access(&self, asset_id: Uuid) -> Response {
        let url = self.app.url("/api/access");
        let request = self.app.client.get(url).query(&[("asset_id", asset_id)]);
        self.send(request).await
    }

    /// Request, upload `bytes`, complete. Returns the grant.
    pub async fn store(&self, object_key: &str, bytes: &[u8]) -> UploadGrant {
        let grant = self.new_upload(&json!({ "object_key": object_key })).await;
        assert_success(self.app.upload_file(&grant.signed_info, bytes).await).await;
        assert_status(self.mark_status(grant.asset_id, "complete").await, 200).await;
        grant
    }

    /// `GET` any API path.
    pub async fn get(&self, path: &str) -> Response {
        self.send(self.app.client.get(self.app.url(path))).await
    }

    /// `DELETE` any API path.
    pub async fn delete(&self, path: &str) -> Response {
        self.send(self.app.client.delete(self.app.url(path))).await
    }

    /// `POST` a JSON body to any API path.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(self.app.client.post(self.app.url(path)).json(body))
            .await
    }

    async fn send(&self, request: RequestBuilder) -> Response {
        let request = self.headers.iter().fold(request, |request, (name, value)| {
            request.header(name, value)
        });
        request.send().await.expect("sending an API request")
    }
}
