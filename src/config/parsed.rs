//! Deserialisers of keys that hold a parsed value (a URL, networks): a value that does not
//! parse is refused when the configuration is read, naming its key, and the rest of the crate
//! receives the parsed type.

use ipnet::IpNet;
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serializer};
use url::Url;

/// `Option<Url>` of an `http://` or `https://` URL with a host, read from and written as text.
pub mod http_url {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Url>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let url = Url::parse(&text).map_err(|e| D::Error::custom(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(D::Error::custom(
                "must be an http:// or https:// URL with a host",
            ));
        }
        Ok(Some(url))
    }

    pub fn serialize<S: Serializer>(url: &Option<Url>, serializer: S) -> Result<S::Ok, S::Error> {
        match url {
            Some(url) => serializer.serialize_some(url.as_str()),
            None => serializer.serialize_none(),
        }
    }
}

/// IP addresses or CIDR ranges (an address alone is its own /32 or /128), as a list or one
/// comma-separated string (see [`super::lenient::comma_list`]).
pub fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    super::lenient::comma_list(deserializer)?
        .iter()
        .map(|item| {
            super::parse_network(item).ok_or_else(|| {
                D::Error::custom(format!("{item:?} is not an IP address or CIDR range"))
            })
        })
        .collect()
}
