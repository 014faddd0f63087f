//! Reading a query string into the type that documents it (`ToParameters`): each parameter
//! parsed by its own field, an error that names the parameter, and a parameter the operation
//! does not document refused rather than ignored (a misspelt `limt=5` would otherwise list
//! 100 assets without a word).

use std::str::FromStr;

use salvo::Request;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::{Map, Value};

use crate::domain::ValidationError;

/// Parses the request's query as `T` (a struct with `#[serde(deny_unknown_fields)]`).
///
/// Values arrive as text; fields that are not text read them with [`parsed`] or [`number`].
/// A parameter given twice is refused: which of the two was meant cannot be known.
pub fn parse_query<T: DeserializeOwned>(req: &Request) -> Result<T, ValidationError> {
    let mut pairs = Map::new();
    for (name, values) in req.queries().iter_all() {
        if values.len() > 1 {
            return Err(ValidationError::new(name.as_str(), "must be given once"));
        }
        if let Some(value) = values.first() {
            pairs.insert(name.clone(), Value::String(value.clone()));
        }
    }
    serde_path_to_error::deserialize(Value::Object(pairs)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        if let Some(name) = missing_parameter(&message) {
            return ValidationError::new(name, "is required");
        }
        match unknown_parameter(&message) {
            Some((name, reason)) => ValidationError::new(name, reason),
            None if path == "." => ValidationError::new("query", message),
            // A field's own error is a `ValidationError` reason, or serde's wording.
            None => ValidationError::new(path, message),
        }
    })
}

/// The name in serde's "missing field `x`".
fn missing_parameter(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// The name in serde's "unknown field `x`, expected one of `a`, `b`" (or "…, there are no
/// fields"), and the reason to give for it.
fn unknown_parameter(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let reason = match rest.strip_prefix(", expected ") {
        Some(expected) => format!(
            "is not a parameter of this operation (expected {})",
            expected.trim_start_matches("one of ")
        ),
        None => "is not a parameter of this operation, which takes none".to_owned(),
    };
    Some((name.to_owned(), reason))
}

/// Refuses every query parameter, for an operation that documents none.
pub fn no_query(req: &Request) -> Result<(), ValidationError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    parse_query::<Empty>(req).map(|_| ())
}

/// An optional parameter read with its type's `FromStr`, whose error is the reason given.
pub fn parsed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = ValidationError>,
{
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|e: ValidationError| D::Error::custom(e.reason))
}

/// A required parameter read with its type's `FromStr`.
pub fn required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = ValidationError>,
{
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map_err(|e: ValidationError| D::Error::custom(e.reason))
}

/// An optional whole number.
pub fn number<'de, D, N>(deserializer: D) -> Result<Option<N>, D::Error>
where
    D: Deserializer<'de>,
    N: FromStr,
{
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|_| D::Error::custom("must be a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_parameter_is_named_with_the_expected_ones() {
        let (name, reason) =
            unknown_parameter("unknown field `limt`, expected one of `limit`, `cursor`").unwrap();
        assert_eq!(name, "limt");
        assert_eq!(
            reason,
            "is not a parameter of this operation (expected `limit`, `cursor`)"
        );
        let (name, reason) = unknown_parameter("unknown field `x`, expected `asset_id`").unwrap();
        assert_eq!(name, "x");
        assert!(reason.ends_with("(expected `asset_id`)"), "{reason}");
        let (name, reason) = unknown_parameter("unknown field `x`, there are no fields").unwrap();
        assert_eq!(name, "x");
        assert!(reason.ends_with("which takes none"), "{reason}");
        assert!(unknown_parameter("missing field `asset_id`").is_none());
        assert_eq!(
            missing_parameter("missing field `asset_id`"),
            Some("asset_id")
        );
    }
}
