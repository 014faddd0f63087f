//! Deserialisers for list-valued keys that must also be settable from one environment
//! variable, where every value arrives as text.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrText<T> {
    List(Vec<T>),
    Text(String),
}

/// A list of strings, or one string holding either a JSON array (`["image/*", "text/plain"]`)
/// or comma-separated items (`"image/*, application/pdf"`); an empty string is an empty list.
pub fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrText::<String>::deserialize(deserializer)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) if text.trim_start().starts_with('[') => serde_json::from_str(&text)
            .map_err(|e| {
                D::Error::custom(format!(
                    "expected a JSON array of strings or comma-separated items: {e}"
                ))
            })?,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A list of tables, or one string holding them as a JSON array
/// (`'[{"owner": "a", "sha256": "…"}]'`).
pub fn json_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match ListOrText::<T>::deserialize(deserializer)? {
        ListOrText::List(items) => Ok(items),
        ListOrText::Text(text) if text.trim().is_empty() => Ok(Vec::new()),
        ListOrText::Text(text) => serde_json::from_str(&text)
            .map_err(|e| D::Error::custom(format!("expected a JSON array of tables: {e}"))),
    }
}
