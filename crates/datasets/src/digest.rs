//! The SHA-256 of a stream, computed from its bytes as they are read, so that a file read
//! anyway is hashed without a second pass over it.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// A reader that passes on its inner reader's bytes and hashes them on the way.
pub(crate) struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Sha256Reader<R> {
    /// Hashes what is read from `inner`.
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The lower-case hex SHA-256 of every byte read so far.
    pub(crate) fn hex_digest(self) -> String {
        format!("{:x}", self.hasher.finalize())
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_exactly_the_bytes_read_in_pieces() {
        // SHA-256("abc"), the FIPS 180-2 test vector.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut reader = Sha256Reader::new(&b"abcdef"[..]);
        let mut first = [0u8; 1];
        let mut rest = [0u8; 2];
        reader.read_exact(&mut first).unwrap();
        reader.read_exact(&mut rest).unwrap();
        assert_eq!([first[0], rest[0], rest[1]], *b"abc");
        assert_eq!(reader.hex_digest(), abc);
    }
}
