//! Environment variables as a figment provider that keeps every value as the text it was.
//!
//! figment's own `Env` provider parses values, so `UPLOADER_STORAGE__BUCKET=12345` becomes a
//! number and `…SIGNING_KEY=0123…` loses its leading zero. Here values stay strings and
//! [`Figment::extract_lossy`](figment::Figment::extract_lossy) turns them into numbers or
//! booleans only where a key wants one.

use std::collections::BTreeMap;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub struct RawEnv {
    vars: BTreeMap<String, String>,
}

impl RawEnv {
    /// The variables of this process.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// A given set of variables (for tests and embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// `PREFIX<SECTION>__<KEY>` variables, keys lowercased and split on `__`. An empty
    /// variable counts as unset, as `${VAR:-}` in compose files and Helm templates produce.
    pub fn prefixed_provider(&self, prefix: &str) -> EnvProvider {
        let entries = self
            .vars
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .filter_map(|(name, value)| {
                let key = name.strip_prefix(prefix)?;
                // Only `SECTION__KEY` names are keys; `UPLOADER_PROFILE` and friends are not.
                key.contains("__")
                    .then(|| (key.to_ascii_lowercase().replace("__", "."), value.clone()))
            })
            .collect();
        EnvProvider {
            name: format!("environment variable(s) {prefix}*"),
            entries,
        }
    }

    /// The variables the original service read: `DATABASE_URL`, `POSTGRESQL_LIBPQ_CONN_STR`
    /// (both set `database.url`; `DATABASE_URL` wins) and `S3_BUCKET_NAME` (`storage.bucket`).
    pub fn compat_provider(&self) -> EnvProvider {
        let mut entries = Vec::new();
        let database_url = self
            .non_empty("DATABASE_URL")
            .or_else(|| self.non_empty("POSTGRESQL_LIBPQ_CONN_STR"));
        if let Some(url) = database_url {
            entries.push(("database.url".to_owned(), url.to_owned()));
        }
        if let Some(bucket) = self.non_empty("S3_BUCKET_NAME") {
            entries.push(("storage.bucket".to_owned(), bucket.to_owned()));
        }
        EnvProvider {
            name: "environment variables DATABASE_URL / POSTGRESQL_LIBPQ_CONN_STR / S3_BUCKET_NAME"
                .into(),
            entries,
        }
    }

    fn non_empty(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Dotted keys with string values, provided to figment as nested dictionaries.
pub struct EnvProvider {
    name: String,
    entries: Vec<(String, String)>,
}

impl Provider for EnvProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.entries {
            let nested = figment::util::nest(key, Value::from(value.clone()))
                .into_dict()
                .expect("a dotted key always nests into a dictionary");
            dict = merge(dict, nested);
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn merge(mut into: Dict, from: Dict) -> Dict {
    for (key, value) in from {
        let merged = match (into.remove(&key), value) {
            (Some(Value::Dict(tag, a)), Value::Dict(_, b)) => Value::Dict(tag, merge(a, b)),
            (_, value) => value,
        };
        into.insert(key, merged);
    }
    into
}
