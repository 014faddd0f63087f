//! Reading JSON request bodies with errors a client can act on: the size limit, the media
//! type, and the name of the field that is wrong.

use std::time::Duration;

use salvo::Request;
use salvo::http::ParseError;
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::domain::ValidationError;
use crate::error::AppError;

/// Largest JSON body the API reads.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Parses the body as `T`, requiring `application/json` (or `+json`), at most 64 KiB, read
/// within `server.request_body_timeout_secs` (a body trickled in byte by byte would otherwise
/// hold a connection and a task for as long as its sender likes).
pub async fn read_json<T: DeserializeOwned>(
    req: &mut Request,
    settings: &Settings,
) -> Result<T, AppError> {
    let is_json = req.content_type().is_some_and(|mime| {
        mime.type_() == mime::APPLICATION
            && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
    });
    if !is_json {
        return Err(AppError::UnsupportedMediaType);
    }
    read_json_of_any_type(req, settings).await
}

/// [`read_json`] without the media type check, for clients (Uppy) that may send JSON as
/// `text/plain`.
pub async fn read_json_of_any_type<T: DeserializeOwned>(
    req: &mut Request,
    settings: &Settings,
) -> Result<T, AppError> {
    let timeout = Duration::from_secs(settings.server.request_body_timeout_secs);
    let payload = tokio::time::timeout(timeout, req.payload_with_max_size(MAX_JSON_BODY))
        .await
        .map_err(|_| AppError::BodyTimeout { timeout })?
        .map_err(|e| match e {
            ParseError::PayloadTooLarge => AppError::BodyTooLarge {
                limit: MAX_JSON_BODY,
            },
            other => AppError::MalformedBody(other.to_string()),
        })?;
    parse_json(payload)
}

/// Deserialises `bytes`, naming the offending field when the JSON is well-formed but wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() {
            return AppError::MalformedBody(message);
        }
        let field = if path == "." {
            backticked(&message).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        AppError::Validation(ValidationError::new(field, message))
    })?;
    deserializer
        .end()
        .map_err(|e| AppError::MalformedBody(strip_position(&e.to_string())))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 20"; the field name says more to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// The field named in "missing field `x`" or "unknown field `x`, expected …".
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        size: Option<u64>,
    }

    fn field_of(json: &str) -> Option<String> {
        match parse_json::<Body>(json.as_bytes()) {
            Err(AppError::Validation(e)) => Some(e.field),
            _ => None,
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            (r#"{"size": 1}"#, "name", "a required field is missing"),
            (r#"{"name": 1}"#, "name", "a string field holds a number"),
            (
                r#"{"name": "a", "size": -1}"#,
                "size",
                "a size cannot be negative",
            ),
            (
                r#"{"name": "a", "sise": 1}"#,
                "sise",
                "a misspelt field must not be ignored",
            ),
        ];
        for (json, field, why) in cases {
            assert_eq!(field_of(json).as_deref(), Some(*field), "{why}");
        }
    }

    #[test]
    fn broken_json_is_malformed() {
        for json in ["{", "not json", r#"{"name": "a"} trailing"#, ""] {
            assert!(
                matches!(
                    parse_json::<Body>(json.as_bytes()),
                    Err(AppError::MalformedBody(_))
                ),
                "{json:?}"
            );
        }
    }
}
