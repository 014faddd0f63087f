//! Size and SHA-256 of bytes as they pass, for both backends: the local backend's record of
//! an upload (hashed while the body streams in, or while its parts are assembled) and the
//! read-back of an object neither backend kept a checksum for.
//!
//! The chunks come from different places (a request body, files on disk, an S3 response)
//! and some are written somewhere on the way, so what is shared is the [`HashingCounter`]
//! they are fed to, and [`copy_hashed`], the blocking loop of the readers of files.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::domain::Sha256Checksum;

/// Bytes counted and hashed: how many, and their SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digested {
    pub size: u64,
    pub digest: [u8; 32],
}

impl Digested {
    /// The digest in the base64 form S3 and the API use.
    pub fn checksum(&self) -> Sha256Checksum {
        Sha256Checksum::from_digest(&self.digest).expect("SHA-256 digests are 32 bytes")
    }
}

/// Counts and hashes the chunks it is fed, in order.
#[derive(Default)]
pub struct HashingCounter {
    hasher: Sha256,
    size: u64,
}

impl HashingCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
    }

    pub fn finish(self) -> Digested {
        Digested {
            size: self.size,
            digest: self.hasher.finalize().into(),
        }
    }
}

/// The SHA-256 of each `part_size` range of bytes as they pass, however they are chunked:
/// the read-back check of an object's parts on stores that keep no part checksums.
pub struct PartHasher {
    part_size: u64,
    current: HashingCounter,
    parts: Vec<Sha256Checksum>,
}

impl PartHasher {
    /// `part_size` must be positive (a multipart upload's always is).
    pub fn new(part_size: u64) -> Self {
        Self {
            part_size: part_size.max(1),
            current: HashingCounter::new(),
            parts: Vec::new(),
        }
    }

    pub fn update(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            let room = usize::try_from(self.part_size - self.current.size).unwrap_or(usize::MAX);
            let (now, rest) = chunk.split_at(room.min(chunk.len()));
            self.current.update(now);
            chunk = rest;
            if self.current.size == self.part_size {
                let full = std::mem::take(&mut self.current);
                self.parts.push(full.finish().checksum());
            }
        }
    }

    /// The parts' checksums in order; the last part may be shorter.
    pub fn finish(mut self) -> Vec<Sha256Checksum> {
        if self.current.size > 0 || self.parts.is_empty() {
            self.parts.push(self.current.finish().checksum());
        }
        self.parts
    }
}

/// Reads `reader` to its end through `buffer`, feeding each chunk to `counter` and writing
/// it to `writer` (`io::sink()` to only hash). The buffer is the caller's so that one large
/// buffer serves many files.
pub fn copy_hashed(
    reader: &mut impl Read,
    writer: &mut impl Write,
    counter: &mut HashingCounter,
    buffer: &mut [u8],
) -> io::Result<()> {
    loop {
        let read = reader.read(buffer)?;
        if read == 0 {
            return Ok(());
        }
        counter.update(&buffer[..read]);
        writer.write_all(&buffer[..read])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hash_like_the_whole() {
        let mut counter = HashingCounter::new();
        counter.update(b"hel");
        counter.update(b"");
        counter.update(b"lo");
        let digested = counter.finish();
        assert_eq!(digested.size, 5);
        assert_eq!(digested.digest, <[u8; 32]>::from(Sha256::digest(b"hello")));
        assert_eq!(
            digested.checksum().as_str(),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
    }

    #[test]
    fn copy_hashed_copies_and_counts_through_a_small_buffer() {
        let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut counter = HashingCounter::new();
        let mut copied = Vec::new();
        copy_hashed(&mut &body[..], &mut copied, &mut counter, &mut [0; 7]).unwrap();
        assert_eq!(copied, body);
        let digested = counter.finish();
        assert_eq!(digested.size, 1000);
        assert_eq!(digested.digest, <[u8; 32]>::from(Sha256::digest(&body)));
    }

    #[test]
    fn parts_are_hashed_at_their_boundaries_whatever_the_chunks() {
        let body: Vec<u8> = (0..=255u8).cycle().take(25).collect();
        let expected: Vec<Sha256Checksum> = body
            .chunks(10)
            .map(|part| Sha256Checksum::from_digest(&Sha256::digest(part)).unwrap())
            .collect();
        for chunk in [1, 3, 10, 11, 25] {
            let mut parts = PartHasher::new(10);
            body.chunks(chunk).for_each(|c| parts.update(c));
            assert_eq!(parts.finish(), expected, "chunks of {chunk}");
        }
        let mut exact = PartHasher::new(5);
        exact.update(&body[..10]);
        assert_eq!(
            exact.finish().len(),
            2,
            "no empty part after an exact multiple"
        );
    }

    #[test]
    fn nothing_is_the_digest_of_the_empty_string() {
        let mut counter = HashingCounter::new();
        copy_hashed(&mut io::empty(), &mut io::sink(), &mut counter, &mut [0; 8]).unwrap();
        assert_eq!(
            counter.finish().checksum().as_str(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
