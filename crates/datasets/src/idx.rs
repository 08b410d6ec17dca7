//! A reader for IDX files, the format of the MNIST distribution, raw or gzipped.
//!
//! An IDX file is a big-endian header, a magic number `0x0000TTDD` (`TT` the element
//! type, `0x08` for unsigned bytes; `DD` the number of dimensions), one `u32` per
//! dimension, then the elements in row-major order. This module reads the two kinds
//! MNIST uses: images (`0x00000803`, count x rows x columns) and labels (`0x00000801`).
//!
//! Nothing is allocated from the header's word: the data is read through a reader that
//! stops one byte past the size the header claims, so a lying header costs at most the
//! bytes the file really holds, and a size other than the claimed one is an error.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;

use crate::error::{Error, Result};

/// The magic number of an IDX file of unsigned bytes, less its dimension count.
const UNSIGNED_BYTES_MAGIC: u32 = 0x0000_0800;
/// The magic number of an IDX file of unsigned bytes with three dimensions.
pub const IMAGES_MAGIC: u32 = UNSIGNED_BYTES_MAGIC | 3;
/// The magic number of an IDX file of unsigned bytes with one dimension.
pub const LABELS_MAGIC: u32 = UNSIGNED_BYTES_MAGIC | 1;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The contents of an IDX image file: `count` images of `rows` x `columns` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// The number of images.
    pub count: usize,
    /// The height of each image.
    pub rows: usize,
    /// The width of each image.
    pub columns: usize,
    /// `count * rows * columns` pixels, image after image, each image row-major.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (magic `0x00000803`), gzipped or not.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    parse_images(&mut open(path)?, path)
}

/// Parses an IDX image file's uncompressed bytes from `reader`, to its end on success;
/// `path` names the file in errors.
pub(crate) fn parse_images(reader: &mut dyn Read, path: &Path) -> Result<IdxImages> {
    let ([count, rows, columns], pixels) = parse_idx(reader, path, "images")?;
    Ok(IdxImages {
        count,
        rows,
        columns,
        pixels,
    })
}

/// Reads an IDX label file (magic `0x00000801`), gzipped or not: one byte per label.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    parse_labels(&mut open(path)?, path)
}

/// Parses an IDX label file's uncompressed bytes from `reader`, to its end on success;
/// `path` names the file in errors.
pub(crate) fn parse_labels(reader: &mut dyn Read, path: &Path) -> Result<Vec<u8>> {
    let ([_count], labels) = parse_idx(reader, path, "labels")?;
    Ok(labels)
}

/// Parses an IDX file of unsigned bytes with `RANK` dimensions from `reader`, which a
/// success leaves at its end; returns the dimensions and the elements. `path` names the
/// file and `what` its elements in error messages.
fn parse_idx<const RANK: usize>(
    mut reader: &mut dyn Read,
    path: &Path,
    what: &str,
) -> Result<([usize; RANK], Vec<u8>)> {
    let magic = UNSIGNED_BYTES_MAGIC | RANK as u32;

    let found_magic = read_u32(&mut reader, path, "the 4-byte magic number")?;
    if found_magic != magic {
        return Err(Error::format(
            path,
            format!("magic number {magic:#010x} ({what})"),
            format!("{found_magic:#010x}"),
        ));
    }

    let mut dims = [0usize; RANK];
    for (axis, size) in dims.iter_mut().enumerate() {
        *size = read_u32(&mut reader, path, &format!("the size of dimension {axis}"))? as usize;
    }

    let claimed = dims
        .iter()
        .try_fold(1u64, |total, &size| total.checked_mul(size as u64))
        .ok_or_else(|| {
            Error::format(
                path,
                "dimensions whose product fits in 64 bits",
                format!("{dims:?}"),
            )
        })?;

    let mut data = Vec::new();
    reader
        .take(claimed.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| read_error(path, source))?;
    if data.len() as u64 != claimed {
        let found = if data.len() as u64 > claimed {
            "more (trailing bytes)".to_owned()
        } else {
            data.len().to_string()
        };
        return Err(Error::format(
            path,
            format!("{claimed} bytes of {what} after the header (dimensions {dims:?})"),
            found,
        ));
    }
    Ok((dims, data))
}

/// Opens `path`, decompressing on the fly when its contents start like a gzip stream.
pub(crate) fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|source| Error::io(path, source))?;
    let mut buffered = BufReader::new(file);
    let start = buffered
        .fill_buf()
        .map_err(|source| Error::io(path, source))?;
    if start.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(GzDecoder::new(buffered)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Reads a big-endian `u32`; a short read is a format error describing `what`.
fn read_u32(reader: &mut impl Read, path: &Path, what: &str) -> Result<u32> {
    let mut bytes = [0u8; 4];
    let mut filled = 0;
    while filled < bytes.len() {
        match reader.read(&mut bytes[filled..]) {
            Ok(0) => {
                return Err(Error::format(
                    path,
                    what.to_owned(),
                    format!("end of file after {filled} of its 4 bytes"),
                ))
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(source) => return Err(read_error(path, source)),
        }
    }
    Ok(u32::from_be_bytes(bytes))
}

/// A read failure: corrupt or truncated compressed data is a format error, the rest I/O.
pub(crate) fn read_error(path: &Path, source: std::io::Error) -> Error {
    match source.kind() {
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => {
            Error::format(path, "a valid gzip stream", source.to_string())
        }
        _ => Error::io(path, source),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    /// An IDX file written by hand: big-endian magic, dimensions, then the data.
    pub(crate) fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = magic.to_be_bytes().to_vec();
        for dim in dims {
            bytes.extend_from_slice(&dim.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    /// `bytes` as a gzip stream.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Two 2x3 images with distinct pixels.
    fn two_images() -> Vec<u8> {
        (0..12).map(|i| i * 20).collect()
    }

    fn expect_format_error<T: std::fmt::Debug>(result: Result<T>, path: &Path, needle: &str) {
        match result {
            Err(Error::Format {
                path: error_path,
                expected,
                found,
            }) => {
                assert_eq!(error_path, path);
                let message = format!("expected {expected}, found {found}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn reads_raw_and_gzipped_images() {
        let dir = tempfile::tempdir().unwrap();
        let raw = idx_bytes(0x0803, &[2, 2, 3], &two_images());
        for (name, bytes) in [("raw", raw.clone()), ("gz.gz", gzip(&raw))] {
            let images = read_images(&write(dir.path(), name, &bytes)).unwrap();
            assert_eq!(
                images,
                IdxImages {
                    count: 2,
                    rows: 2,
                    columns: 3,
                    pixels: two_images(),
                }
            );
        }
    }

    #[test]
    fn reads_raw_and_gzipped_labels() {
        let dir = tempfile::tempdir().unwrap();
        let raw = idx_bytes(0x0801, &[4], &[7, 2, 1, 0]);
        for (name, bytes) in [("raw", raw.clone()), ("gz.gz", gzip(&raw))] {
            let labels = read_labels(&write(dir.path(), name, &bytes)).unwrap();
            assert_eq!(labels, [7, 2, 1, 0]);
        }
    }

    #[test]
    fn magic_numbers_are_the_standard_ones() {
        assert_eq!(IMAGES_MAGIC, 2051);
        assert_eq!(LABELS_MAGIC, 2049);
    }

    #[test]
    fn wrong_magic_is_an_error_naming_both_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let labels = write(
            dir.path(),
            "labels",
            &idx_bytes(0x0801, &[4], &[1, 2, 3, 4]),
        );
        expect_format_error(
            read_images(&labels),
            &labels,
            "expected magic number 0x00000803 (images), found 0x00000801",
        );
        let images = write(dir.path(), "images", &idx_bytes(0x0803, &[1, 1, 1], &[9]));
        expect_format_error(read_labels(&images), &images, "found 0x00000803");
    }

    #[test]
    fn truncated_data_is_an_error_raw_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let short = idx_bytes(0x0803, &[2, 2, 3], &two_images()[..11]);
        for (name, bytes) in [("raw", short.clone()), ("gz.gz", gzip(&short))] {
            let path = write(dir.path(), name, &bytes);
            expect_format_error(
                read_images(&path),
                &path,
                "expected 12 bytes of images after the header (dimensions [2, 2, 3]), found 11",
            );
        }
    }

    #[test]
    fn truncated_header_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let full = idx_bytes(0x0803, &[2, 2, 3], &two_images());
        let path = write(dir.path(), "short-header", &full[..10]);
        expect_format_error(
            read_images(&path),
            &path,
            "expected the size of dimension 1, found end of file after 2 of its 4 bytes",
        );
        let empty = write(dir.path(), "empty", &[]);
        expect_format_error(read_labels(&empty), &empty, "the 4-byte magic number");
    }

    #[test]
    fn count_disagreeing_with_the_data_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let too_many = write(dir.path(), "more", &idx_bytes(0x0801, &[3], &[1, 2, 3, 4]));
        expect_format_error(
            read_labels(&too_many),
            &too_many,
            "expected 3 bytes of labels after the header (dimensions [3]), found more",
        );
        let too_few = write(dir.path(), "fewer", &idx_bytes(0x0801, &[5], &[1, 2, 3, 4]));
        expect_format_error(read_labels(&too_few), &too_few, "found 4");
    }

    #[test]
    fn lying_header_fails_without_allocating_its_claim() {
        let dir = tempfile::tempdir().unwrap();
        // Claims 4 GiB - 1 of pixels per image row; holds 3 bytes.
        let huge = idx_bytes(0x0803, &[u32::MAX, u32::MAX, 1], &[1, 2, 3]);
        let path = write(dir.path(), "huge", &gzip(&huge));
        expect_format_error(read_images(&path), &path, "found 3");
        let overflowing = idx_bytes(0x0803, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        let path = write(dir.path(), "overflow", &overflowing);
        expect_format_error(
            read_images(&path),
            &path,
            "expected dimensions whose product fits in 64 bits",
        );
    }

    #[test]
    fn corrupt_or_cut_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = gzip(&idx_bytes(0x0803, &[2, 2, 3], &two_images()));
        let cut = write(dir.path(), "cut.gz", &compressed[..compressed.len() - 6]);
        assert!(matches!(read_images(&cut), Err(Error::Format { .. })));

        let mut flipped = compressed.clone();
        let crc = flipped.len() - 8;
        flipped[crc] ^= 0xff;
        let corrupt = write(dir.path(), "crc.gz", &flipped);
        expect_format_error(
            read_images(&corrupt),
            &corrupt,
            "expected a valid gzip stream",
        );
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        match read_labels(&path) {
            Err(Error::Io {
                path: error_path, ..
            }) => assert_eq!(error_path, path),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
}
