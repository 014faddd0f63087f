//! What `complete` accepts as a list of parts.

use std::path::PathBuf;
use std::time::SystemTime;

use super::*;

fn digest(number: u32) -> String {
    format!("{number:064x}")
}

fn stored(sizes: &[u64]) -> Vec<PartFile> {
    sizes
        .iter()
        .zip(1..)
        .map(|(size, number)| PartFile {
            number,
            digest: digest(number),
            size: *size,
            modified: SystemTime::UNIX_EPOCH,
            path: PathBuf::from(format!("part-{number}")),
        })
        .collect()
}

fn given(numbers: &[u32]) -> Vec<PartRef> {
    numbers
        .iter()
        .map(|n| PartRef {
            part_number: *n,
            etag: format!("\"{}\"", digest(*n)),
            checksum_sha256: None,
        })
        .collect()
}

#[test]
fn every_part_once_with_its_etag_is_assembled_in_order() {
    let chosen = choose_parts(&given(&[3, 1, 2]), &stored(&[5, 5, 2])).unwrap();
    let numbers: Vec<u32> = chosen.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
}

#[test]
fn etags_match_with_or_without_quotes_and_in_any_case() {
    let mut parts = given(&[1]);
    parts[0].etag = digest(1).to_ascii_uppercase();
    assert!(choose_parts(&parts, &stored(&[5])).is_ok());
}

#[test]
fn a_wrong_list_is_refused_saying_what_is_wrong() {
    let mut wrong_etag = given(&[1, 2]);
    wrong_etag[1].etag = digest(9);
    let cases: Vec<(Vec<PartRef>, Vec<PartFile>, &str, &str)> = vec![
        (
            given(&[]),
            stored(&[5]),
            "no parts were given",
            "an empty list",
        ),
        (
            given(&[1, 3]),
            stored(&[5, 5, 5]),
            "missing parts: 2",
            "a gap",
        ),
        (
            given(&[1, 2, 2]),
            stored(&[5, 5]),
            "listed twice",
            "a repeated part",
        ),
        (
            given(&[1, 2, 3]),
            stored(&[5, 5]),
            "part 3 is not in storage",
            "a part never stored",
        ),
        (
            wrong_etag,
            stored(&[5, 5]),
            "part 2: the ETag is not the one storage holds",
            "another ETag",
        ),
        (
            given(&[1, 2, 3]),
            stored(&[5, 4, 2]),
            "part 2 has 4 bytes, but parts have 5",
            "a short part before the last",
        ),
        (
            given(&[1, 2]),
            stored(&[5, 6]),
            "part 2 has 6 bytes, but parts have 5",
            "a last part larger than the others",
        ),
    ];
    for (parts, stored, says, why) in cases {
        let problem = choose_parts(&parts, &stored).unwrap_err();
        assert!(problem.contains(says), "{why}: {problem}");
    }
}
