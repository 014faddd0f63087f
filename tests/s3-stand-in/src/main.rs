//! The tests' S3 stand-in: s3s-fs 0.17's S3 API behind the minio/minio image's interface.
//!
//! Why the project has its own: the shared `local/minio-compat` image (s3s-fs 0.14) ignores the
//! per-part checksums of multipart uploads. s3s-fs 0.17 checks them the way S3 does, which is what
//! the uploader's multipart flow relies on and its tests must see:
//! - UploadPart verifies `x-amz-checksum-sha256` against the body (`BadDigest` on a mismatch) and
//!   ListParts reports each part's `ChecksumSHA256`;
//! - CompleteMultipartUpload checks each CompletedPart's checksum (`InvalidPart` on a mismatch)
//!   and stores a FULL_OBJECT SHA-256 of the whole object (it refuses ChecksumType COMPOSITE).
//!
//! The rest is s3s-fs's too (SigV4 header and presigned auth, signed content-length / type /
//! checksum headers, POST policies). Around it, what MinIO does by default and its users rely on:
//! - CORS for every origin, as MinIO answers when no bucket CORS is set: preflights are
//!   answered, and responses to cross-origin requests allow the origin and expose `ETag`
//!   and the `x-amz-*` headers (browsers need the ETag of each multipart part);
//! - `GET|HEAD /minio/health/live` and `/minio/health/ready` answer 200;
//! - an "API:" line on stderr once it listens.
//!
//! `image.sh` beside this crate wraps it in an image with minio/minio's interface.
//!
//! usage: s3-stand-in --host H --port P --access-key K --secret-key S DIR

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError};

const EXPOSED: &str = "Date, ETag, Server, Connection, Accept-Ranges, Content-Range, \
    Content-Encoding, Content-Length, Content-Type, Content-Disposition, Last-Modified, \
    Content-Language, Cache-Control, Retry-After, X-Amz-Bucket-Region, Expires, X-Amz-Request-Id, \
    X-Amz-Version-Id, X-Amz-Checksum-Sha256, X-Amz-Checksum-Crc32, X-Amz-Checksum-Crc32c";
const METHODS: &str = "GET, PUT, HEAD, POST, DELETE, OPTIONS, PATCH";

struct Opt {
    host: String,
    port: u16,
    access_key: Option<String>,
    secret_key: Option<String>,
    root: String,
}

fn parse_args() -> Opt {
    let mut opt = Opt {
        host: "0.0.0.0".into(),
        port: 9000,
        access_key: None,
        secret_key: None,
        root: "/data".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--host" => opt.host = value(),
            "--port" => {
                opt.port = value()
                    .parse()
                    .unwrap_or_else(|_| die("--port: not a port"))
            }
            "--access-key" => opt.access_key = Some(value()),
            "--secret-key" => opt.secret_key = Some(value()),
            other if other.starts_with("--") => die(&format!("unknown option {other}")),
            other => opt.root = other.to_owned(),
        }
    }
    opt
}

fn die(msg: &str) -> ! {
    eprintln!("s3-stand-in: {msg}");
    std::process::exit(2)
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

fn allow_origin(res: &mut Response<Body>, origin: &HeaderValue) {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

async fn handle(s3: S3Service, req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
    let path = req.uri().path();
    if matches!(path, "/minio/health/live" | "/minio/health/ready")
        && matches!(*req.method(), Method::GET | Method::HEAD)
    {
        return Ok(empty(StatusCode::OK));
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let mut res = empty(StatusCode::OK);
            allow_origin(&mut res, origin);
            let h = res.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            }
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("3600"),
            );
            return Ok(res);
        }
    }
    let mut res = s3.call(req.map(Body::from)).await?;
    if let Some(origin) = &origin {
        allow_origin(&mut res, origin);
    }
    Ok(res)
}

#[tokio::main]
async fn main() {
    let opt = parse_args();
    let fs =
        s3s_fs::FileSystem::new(&opt.root).unwrap_or_else(|e| die(&format!("{}: {e:?}", opt.root)));
    let mut builder = S3ServiceBuilder::new(fs);
    match (opt.access_key, opt.secret_key) {
        (Some(ak), Some(sk)) => builder.set_auth(SimpleAuth::from_single(ak, sk)),
        (None, None) => {}
        _ => die("--access-key and --secret-key go together"),
    }
    let s3 = builder.build();

    let addr: SocketAddr = format!("{}:{}", opt.host, opt.port)
        .parse()
        .unwrap_or_else(|_| die("--host/--port: not an address"));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| die(&format!("bind {addr}: {e}")));
    eprintln!("API: http://{addr}");
    let server = ConnBuilder::new(TokioExecutor::new());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| die(&format!("SIGTERM handler: {e}")));
    let mut stop = std::pin::pin!(async move {
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    });
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(_) => continue,
            },
            _ = stop.as_mut() => break,
        };
        let s3 = s3.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(s3.clone(), req));
            let _ = server.serve_connection(TokioIo::new(socket), service).await;
        });
    }
}
