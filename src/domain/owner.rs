//! Who an asset belongs to.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters that stay as they are in an owner's storage segment.
const KEY_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// The owner of an asset. Until authentication exists every request acts as
/// [`Owner::anonymous`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    pub fn anonymous() -> Self {
        Self("anonymous".into())
    }

    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owner as one storage-key segment: percent-encoded so that no owner name, whatever
    /// it contains (`/`, `..`, `%`), can reach outside its own prefix or collide with another.
    pub fn storage_segment(&self) -> String {
        utf8_percent_encode(&self.0, KEY_SAFE).to_string()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_segments_cannot_escape_or_collide() {
        assert_eq!(Owner::anonymous().storage_segment(), "anonymous");
        assert_eq!(Owner::new("../x").storage_segment(), "%2E%2E%2Fx");
        assert_eq!(Owner::new("a/b").storage_segment(), "a%2Fb");
        assert_ne!(
            Owner::new("a%2Fb").storage_segment(),
            Owner::new("a/b").storage_segment()
        );
    }
}
