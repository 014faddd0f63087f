//! Files for browsers, built into the binary: the JavaScript client at
//! `GET /client/uploader.js` (always) and the upload page at `GET /upload` with its script
//! and style (`ui.enabled`). Each answers with an `ETag` (and 304 to `If-None-Match`), is
//! revalidated on every use (`Cache-Control: no-cache`), and the page carries a strict
//! Content-Security-Policy.

use std::sync::LazyLock;

use salvo::http::StatusCode;
use salvo::http::header::{self, HeaderValue};
use salvo::{Depot, FlowCtrl, Handler, Request, Response, Router, async_trait};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{Settings, StorageBackend};

/// One file served from the binary.
pub struct StaticFile {
    body: &'static str,
    content_type: &'static str,
    etag: LazyLock<String>,
    /// Extra headers (the page's security policy), computed once when the router is built.
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

macro_rules! static_file {
    ($path:literal, $content_type:literal) => {{
        const BODY: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path));
        StaticFile {
            body: BODY,
            content_type: $content_type,
            etag: LazyLock::new(|| etag_of(BODY)),
            headers: Vec::new(),
        }
    }};
}

fn etag_of(body: &str) -> String {
    format!(
        "\"{}\"",
        hex::encode(&Sha256::digest(body.as_bytes())[..12])
    )
}

#[async_trait]
impl Handler for StaticFile {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let etag: &str = &self.etag;
        let headers = res.headers_mut();
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(etag).expect("hex is a header value"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let unchanged = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .any(|tag| tag.trim() == etag || tag.trim() == "*")
            });
        if unchanged {
            res.status_code(StatusCode::NOT_MODIFIED);
            return;
        }
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        res.body(self.body);
    }
}

/// `GET /client/uploader.js`: the client library, importable from any origin (a module
/// script loaded cross-origin needs CORS; the file is public).
pub fn client_router() -> Router {
    let mut client = static_file!(
        "clients/js/src/uploader.js",
        "text/javascript; charset=utf-8"
    );
    client.headers.push((
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    ));
    Router::with_path("client/uploader.js").get(client)
}

/// `GET /upload`, `/upload/page.js` and `/upload/page.css`.
pub fn page_router(settings: &Settings) -> Router {
    let policy = content_security_policy(settings);
    let mut page = static_file!("clients/js/page/index.html", "text/html; charset=utf-8");
    page.headers = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&policy)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    Router::with_path("upload")
        .get(page)
        .push(Router::with_path("page.js").get(static_file!(
            "clients/js/page/page.js",
            "text/javascript; charset=utf-8"
        )))
        .push(Router::with_path("page.css").get(static_file!(
            "clients/js/page/page.css",
            "text/css; charset=utf-8"
        )))
}

/// Scripts, styles and images from this server only, nothing inline, no framing; requests
/// to this server and to the storage that signed URLs point at.
fn content_security_policy(settings: &Settings) -> String {
    let mut connect = vec!["'self'".to_owned()];
    // The page may be reached under another name than the one signed URLs use.
    connect.extend(settings.server.public_url.as_ref().map(origin));
    connect.extend(storage_origins(settings));
    connect.dedup();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

/// Where browsers send the bytes: the public S3 endpoint (or AWS's hosts for the bucket), or
/// this server itself for the local backend.
fn storage_origins(settings: &Settings) -> Vec<String> {
    let storage = &settings.storage;
    if storage.backend == StorageBackend::Local {
        return Vec::new();
    }
    let endpoint = storage
        .s3
        .public_endpoint
        .as_deref()
        .or(storage.s3.endpoint.as_deref());
    match endpoint.and_then(|e| Url::parse(e).ok()) {
        Some(url) => vec![origin(&url)],
        None => {
            let region = &storage.s3.region;
            vec![
                format!("https://{}.s3.{region}.amazonaws.com", storage.bucket),
                format!("https://s3.{region}.amazonaws.com"),
            ]
        }
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_this_server_and_the_s3_endpoint_only() {
        let mut settings = Settings::default();
        settings.storage.backend = StorageBackend::S3;
        settings.storage.s3.endpoint = Some("http://minio:9000".into());
        settings.storage.s3.public_endpoint = Some("http://localhost:9000/".into());
        settings.server.public_url = Some("https://uploads.example.com/".parse().unwrap());
        let policy = content_security_policy(&settings);
        assert!(
            policy
                .contains("connect-src 'self' https://uploads.example.com http://localhost:9000;"),
            "{policy}"
        );
        assert!(
            policy.contains("script-src 'self';") && !policy.contains("unsafe"),
            "{policy}"
        );
    }

    #[test]
    fn without_an_endpoint_the_policy_names_aws() {
        let mut settings = Settings::default();
        settings.storage.backend = StorageBackend::S3;
        settings.storage.bucket = "b".into();
        let policy = content_security_policy(&settings);
        assert!(
            policy.contains("https://b.s3.us-east-1.amazonaws.com"),
            "{policy}"
        );
    }
}
