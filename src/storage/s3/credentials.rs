//! AWS credentials for the signatures this crate computes itself: presigned `PUT` and `GET`
//! URLs (aws-sigv4) and POST policies. (Part URLs are the SDK's own presigned requests.)
//!
//! The SDK caches credentials inside its clients; a provider called directly does not, and
//! some providers (instance metadata, web identity) make a network call each time.

use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::RwLock;

use crate::storage::StorageError;

/// Credentials are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A credentials provider with a cache in front.
pub struct CachedCredentials {
    provider: SharedCredentialsProvider,
    cached: RwLock<Option<Credentials>>,
}

impl CachedCredentials {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: RwLock::new(None),
        }
    }

    /// Current credentials, from the cache while they stay valid.
    pub async fn get(&self) -> Result<Credentials, StorageError> {
        if let Some(credentials) = self.cached.read().await.as_ref().filter(|c| is_fresh(c)) {
            return Ok(credentials.clone());
        }
        let mut cached = self.cached.write().await;
        if let Some(credentials) = cached.as_ref().filter(|c| is_fresh(c)) {
            return Ok(credentials.clone());
        }
        let credentials = self.provider.provide_credentials().await.map_err(|e| {
            StorageError::Unavailable(anyhow!(e).context("loading AWS credentials"))
        })?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

fn is_fresh(credentials: &Credentials) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_MARGIN)
}
