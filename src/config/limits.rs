//! `[uploads]`: what an upload may be, globally and per owner.

use serde::{Deserialize, Serialize};

use super::lenient;
use crate::domain::Owner;

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (but the last) and the smallest configurable threshold.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;

/// `[uploads]`: limits on issued upload URLs and on what each owner may store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSettings {
    pub default_expires_in: u64,
    pub max_expires_in: u64,
    /// Largest object a client may upload, in bytes.
    pub max_size: u64,
    /// Media types an upload may declare: exact (`application/pdf`) or wildcards (`image/*`).
    /// Anything but `["*/*"]` makes `content_type` required.
    #[serde(deserialize_with = "lenient::comma_list")]
    pub allowed_content_types: Vec<String>,
    /// Every upload must declare `checksum_sha256`.
    pub require_checksum: bool,
    /// Most pending uploads one owner may have at once (unlimited when unset).
    pub max_pending_uploads: Option<u64>,
    /// Most bytes one owner may have declared across pending and complete assets (unlimited
    /// when unset). A pending upload without `content_length` counts as `max_size`.
    pub max_total_bytes: Option<u64>,
    /// Declared lengths above this are uploaded in parts (S3 backend); also when a client asks.
    pub multipart_threshold: u64,
    /// Preferred part size; larger when a file would otherwise need more than 10 000 parts.
    pub multipart_part_size: u64,
    /// Most part URLs signed by one request.
    pub max_presigned_parts: u32,
    /// Per-owner overrides of `max_size`, `max_pending_uploads` and `max_total_bytes`.
    #[serde(deserialize_with = "lenient::json_list")]
    pub owner_limits: Vec<OwnerLimits>,
    /// Local backend: complete an asset in the request that stores its bytes (a single `PUT`
    /// or a form `POST`), as `PUT /api/status` would.
    pub complete_on_upload: bool,
}

/// Overrides for one owner; unset fields keep the global value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerLimits {
    pub owner: String,
    pub max_size: Option<u64>,
    pub max_pending_uploads: Option<u64>,
    pub max_total_bytes: Option<u64>,
}

/// Whether `content_type` (its essence, parameters ignored) matches one of `patterns`: exact
/// media types, `type/*` wildcards, or `*/*`.
pub fn content_type_matches(patterns: &[String], content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (kind, _) = essence.split_once('/').unwrap_or((&essence, ""));
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        pattern == "*/*"
            || pattern == essence
            || pattern
                .strip_suffix("/*")
                .is_some_and(|prefix| prefix == kind)
    })
}

/// Whether `pattern` is a media type or a wildcard such as `image/*` or `*/*`.
pub fn is_content_type_pattern(pattern: &str) -> bool {
    let concrete = crate::domain::ContentType::parse(pattern).is_ok();
    let wildcard = pattern == "*/*"
        || pattern.strip_suffix("/*").is_some_and(|kind| {
            !kind.is_empty()
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        });
    concrete || wildcard
}

/// The limits that apply to one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_size: u64,
    pub max_pending_uploads: Option<u64>,
    pub max_total_bytes: Option<u64>,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            default_expires_in: 60,
            max_expires_in: 1800,
            max_size: 5 * 1024 * 1024 * 1024,
            allowed_content_types: vec!["*/*".into()],
            require_checksum: false,
            max_pending_uploads: None,
            max_total_bytes: None,
            multipart_threshold: 100 * MIB,
            multipart_part_size: 16 * MIB,
            max_presigned_parts: 100,
            owner_limits: Vec::new(),
            complete_on_upload: false,
        }
    }
}

impl UploadSettings {
    /// The limits of `owner`: its overrides over the global values.
    pub fn limits_for(&self, owner: &Owner) -> Limits {
        let overrides = self.owner_limits.iter().find(|l| l.owner == owner.as_str());
        Limits {
            max_size: overrides.and_then(|l| l.max_size).unwrap_or(self.max_size),
            max_pending_uploads: overrides
                .and_then(|l| l.max_pending_uploads)
                .or(self.max_pending_uploads),
            max_total_bytes: overrides
                .and_then(|l| l.max_total_bytes)
                .or(self.max_total_bytes),
        }
    }

    /// True when every media type is allowed (and `content_type` is optional).
    pub fn allows_any_content_type(&self) -> bool {
        self.allowed_content_types.iter().any(|p| p == "*/*")
    }

    /// Whether `content_type` (its essence, parameters ignored) matches an allowed pattern.
    pub fn allows_content_type(&self, content_type: &str) -> bool {
        content_type_matches(&self.allowed_content_types, content_type)
    }

    /// The part size for a file of `total` bytes: the preferred size, grown (in whole MiB) so
    /// the file fits in 10 000 parts.
    pub fn part_size_for(&self, total: u64) -> u64 {
        let needed = total.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        self.multipart_part_size
            .max(needed)
            .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_overrides_replace_only_what_they_set() {
        let settings = UploadSettings {
            max_pending_uploads: Some(10),
            owner_limits: vec![OwnerLimits {
                owner: "big".into(),
                max_size: Some(1 << 40),
                max_pending_uploads: None,
                max_total_bytes: Some(5),
            }],
            ..UploadSettings::default()
        };
        let big = settings.limits_for(&Owner::new("big"));
        assert_eq!(big.max_size, 1 << 40);
        assert_eq!(
            big.max_pending_uploads,
            Some(10),
            "not overridden: the global value"
        );
        assert_eq!(big.max_total_bytes, Some(5));
        let other = settings.limits_for(&Owner::new("other"));
        assert_eq!(other.max_size, settings.max_size);
        assert_eq!(other.max_total_bytes, None);
    }

    #[test]
    fn part_sizes_keep_every_file_within_ten_thousand_parts() {
        let settings = UploadSettings::default();
        assert_eq!(
            settings.part_size_for(200 * MIB),
            16 * MIB,
            "the preferred size"
        );
        let huge = 5 * 1024 * 1024 * MIB; // 5 TiB, S3's largest object
        let size = settings.part_size_for(huge);
        assert!(huge.div_ceil(size) <= MAX_PARTS, "{size}");
        assert_eq!(size % MIB, 0);
    }

    #[test]
    fn content_type_patterns_match_exactly_or_by_wildcard() {
        let settings = UploadSettings {
            allowed_content_types: vec!["image/*".into(), "application/pdf".into()],
            ..UploadSettings::default()
        };
        let cases = [
            ("image/png", true, "image/* covers every image"),
            ("IMAGE/PNG", true, "media types are case-insensitive"),
            ("application/pdf", true, "exact match"),
            (
                "application/pdf; version=2",
                true,
                "parameters do not change the type",
            ),
            ("application/json", false, "not listed"),
            ("imagex/png", false, "a wildcard covers its own type only"),
            ("text/html", false, "not listed"),
        ];
        for (content_type, allowed, why) in cases {
            assert_eq!(
                settings.allows_content_type(content_type),
                allowed,
                "{content_type}: {why}"
            );
        }
        assert!(!settings.allows_any_content_type());
        assert!(UploadSettings::default().allows_any_content_type());
    }
}
