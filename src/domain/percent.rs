//! The percent-encode sets of the crate, one per rule, so that two places applying the same
//! rule share its definition (for `percent_encoding::utf8_percent_encode`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986's unreserved characters (§2.3: ALPHA, DIGIT, `-`, `.`, `_`, `~`) stay, every other
/// byte is percent-encoded. SigV4 requires exactly this of presigned S3 URLs
/// (`storage::s3::presign`); the local backend's signed URLs encode their bucket and key
/// segments with it too (`storage::local`).
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// ALPHA, DIGIT, `-` and `_` stay: RFC 3986's unreserved set less `.` and `~`, for
/// [`super::Owner::storage_segment`]. Without `.` no encoded owner is `.` or `..`; without `~`
/// none starts like the digest form (`~sha256-…`) that replaces long ones.
pub const OWNER_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

#[cfg(test)]
mod tests {
    use percent_encoding::utf8_percent_encode;

    use super::*;

    #[test]
    fn unreserved_keeps_exactly_rfc_3986s_unreserved_characters() {
        let printable: String = (0x20u8..0x7f).map(char::from).collect();
        let kept: String = utf8_percent_encode(&printable, UNRESERVED)
            .to_string()
            .split('%')
            .enumerate()
            .map(|(i, piece)| if i == 0 { piece } else { &piece[2..] })
            .collect();
        assert_eq!(
            kept,
            "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
        );
    }

    #[test]
    fn owner_segments_encode_dots_and_tildes() {
        assert_eq!(
            utf8_percent_encode("a-b_c.d~e", OWNER_SEGMENT).to_string(),
            "a-b_c%2Ed%7Ee"
        );
    }
}
