//! Reading a safetensors header without trusting it: the 8-byte length first, checked
//! against the file's size and a limit; then the JSON, parsed straight into typed entries with
//! a bounded number of entries and dimensions and duplicate names refused; then every
//! tensor's dtype, shape and offsets checked against the data the file holds. No tensor data
//! is read here.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Seek};

use safetensors::Dtype;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::SaveError;
use super::names::Shown;
use super::source::Source;

/// The size of the header's length prefix.
const LENGTH_PREFIX: u64 = 8;

/// The largest header read (safetensors' own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The most entries (tensors and metadata entries together) a header may have.
pub const MAX_ENTRIES: usize = 100_000;

/// The most dimensions a tensor may have.
pub const MAX_RANK: usize = 64;

/// A tensor the header describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Its name (`encoder/dense/kernel`).
    pub name: String,
    /// Its element type.
    pub dtype: Dtype,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// Where its bytes start in the data section.
    pub start: u64,
    /// Where they end.
    pub end: u64,
}

/// A checked header: its metadata, and its tensors in data order, each fitting the data.
#[derive(Debug)]
pub struct Header {
    /// The `__metadata__` entries (none when the file has no such block).
    pub metadata: HashMap<String, String>,
    /// The tensors, in the order of their data.
    pub tensors: Vec<TensorEntry>,
    /// Where the data section starts in the file.
    pub data_start: u64,
}

impl Header {
    /// Reads and checks the header of `source`.
    pub fn read<R: Read + Seek>(source: &mut Source<'_, R>) -> Result<Header, SaveError> {
        let path = source.path();
        let format_error = |reason: String| SaveError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let size = source.size();
        if size < LENGTH_PREFIX {
            return Err(format_error(format!(
                "the file has {size} bytes, fewer than the {LENGTH_PREFIX}-byte header length"
            )));
        }
        let prefix = source.read_at(0, LENGTH_PREFIX)?;
        let header_len = u64::from_le_bytes(prefix.try_into().expect("8 bytes were read"));
        if header_len > size - LENGTH_PREFIX {
            return Err(format_error(format!(
                "the header claims {header_len} bytes, but only {} follow the length",
                size - LENGTH_PREFIX
            )));
        }
        if header_len > MAX_HEADER_BYTES {
            return Err(format_error(format!(
                "the header claims {header_len} bytes, more than the limit of {MAX_HEADER_BYTES}"
            )));
        }
        let text = source.read_at(LENGTH_PREFIX, header_len)?;
        let RawHeader { metadata, tensors } = serde_json::from_slice(&text)
            .map_err(|e| format_error(format!("invalid header: {e}")))?;
        drop(text);
        let data_start = LENGTH_PREFIX + header_len;
        let tensors = in_data_order(tensors, size - data_start).map_err(format_error)?;
        Ok(Header {
            metadata,
            tensors,
            data_start,
        })
    }

    /// The bytes of `tensor`, read from `source`.
    pub fn data<R: Read + Seek>(
        &self,
        tensor: &TensorEntry,
        source: &mut Source<'_, R>,
    ) -> Result<Vec<u8>, SaveError> {
        source.read_at(self.data_start + tensor.start, tensor.end - tensor.start)
    }
}

/// The number of bytes `shape` elements of `dtype` take, if whole and without overflow.
fn byte_size(dtype: Dtype, shape: &[usize]) -> Result<u64, String> {
    let bits = shape
        .iter()
        .try_fold(dtype.bitsize() as u64, |n, &d| n.checked_mul(d as u64))
        .ok_or("its size overflows")?;
    if bits % 8 != 0 {
        return Err(format!("its {bits} bits do not fill whole bytes"));
    }
    Ok(bits / 8)
}

/// `tensors` sorted by offset, after checking that names are unique, that each tensor's
/// offsets span exactly its size, and that together they tile the `data_len` data bytes.
fn in_data_order(mut tensors: Vec<TensorEntry>, data_len: u64) -> Result<Vec<TensorEntry>, String> {
    tensors.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = tensors.windows(2).find(|p| p[0].name == p[1].name) {
        return Err(format!(
            "tensor '{}' appears twice in the header",
            Shown(&pair[0].name)
        ));
    }
    tensors.sort_unstable_by_key(|t| (t.start, t.end));
    let mut next = 0;
    for t in &tensors {
        let name = Shown(&t.name);
        if t.end > data_len {
            return Err(format!(
                "tensor '{name}' claims data offset {}, beyond the {data_len} data bytes in the file",
                t.end
            ));
        }
        if t.start != next || t.end < t.start {
            return Err(format!(
                "tensor '{name}' has data offsets [{}, {}], but the tensors before it end at \
                 {next}: tensors must follow each other without gap or overlap",
                t.start, t.end
            ));
        }
        let size = byte_size(t.dtype, &t.shape)
            .map_err(|e| format!("tensor '{name}' ({}{:?}): {e}", t.dtype, t.shape))?;
        if size != t.end - t.start {
            return Err(format!(
                "tensor '{name}' ({}{:?}) takes {size} bytes, but its offsets span {}",
                t.dtype,
                t.shape,
                t.end - t.start
            ));
        }
        next = t.end;
    }
    if next != data_len {
        return Err(format!(
            "the tensors end at byte {next} of the data, but the file holds {data_len} data bytes"
        ));
    }
    Ok(tensors)
}

/// The header as parsed, before its tensors are checked against the data.
struct RawHeader {
    metadata: HashMap<String, String>,
    tensors: Vec<TensorEntry>,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

fn too_many<E: de::Error>() -> E {
    E::custom(format!("the header has more than {MAX_ENTRIES} entries"))
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of tensor entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut metadata = None;
        let mut tensors = Vec::new();
        let mut entries = 0;
        while let Some(name) = map.next_key::<String>()? {
            if name == "__metadata__" {
                if metadata.is_some() {
                    return Err(de::Error::custom("'__metadata__' appears twice"));
                }
                metadata = Some(map.next_value_seed(MetadataSeed {
                    entries: &mut entries,
                })?);
                continue;
            }
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(too_many());
            }
            let info: TensorInfo = map
                .next_value()
                .map_err(|e| de::Error::custom(format!("tensor '{}': {e}", Shown(&name))))?;
            tensors.push(TensorEntry {
                name,
                dtype: info.dtype,
                shape: info.shape.0,
                start: info.data_offsets.0,
                end: info.data_offsets.1,
            });
        }
        Ok(RawHeader {
            metadata: metadata.unwrap_or_default(),
            tensors,
        })
    }
}

/// A tensor's entry; other fields are skipped without being kept.
#[derive(Deserialize)]
struct TensorInfo {
    dtype: Dtype,
    shape: Shape,
    data_offsets: (u64, u64),
}

/// Dimensions, at most [`MAX_RANK`] of them.
struct Shape(Vec<usize>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {MAX_RANK} dimensions")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut dims = Vec::new();
        while let Some(d) = seq.next_element()? {
            if dims.len() == MAX_RANK {
                return Err(de::Error::custom(format!(
                    "more than {MAX_RANK} dimensions"
                )));
            }
            dims.push(d);
        }
        Ok(Shape(dims))
    }
}

/// The `__metadata__` block: strings to strings, each key once, counted against the header's
/// entries.
struct MetadataSeed<'a> {
    entries: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for MetadataSeed<'_> {
    type Value = HashMap<String, String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetadataSeed<'_> {
    type Value = HashMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("__metadata__ mapping strings to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut metadata = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            *self.entries += 1;
            if *self.entries > MAX_ENTRIES {
                return Err(too_many());
            }
            if metadata.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "metadata entry '{}' appears twice",
                    Shown(&key)
                )));
            }
            let value: String = map
                .next_value()
                .map_err(|e| de::Error::custom(format!("metadata entry '{}': {e}", Shown(&key))))?;
            metadata.insert(key, value);
        }
        Ok(metadata)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn file_with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<Header, String> {
        Header::read(&mut Source::from_bytes(bytes, Path::new("f.safetensors")))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_well_formed_file() {
        let bytes = file_with_header(
            r#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},
                "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[{}]},
                "__metadata__":{"format":"rkeras"}}   "#,
            &[0; 12],
        );
        let header = read(&bytes).unwrap();
        let names: Vec<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(header.metadata["format"], "rkeras");
        assert_eq!(header.data_start, bytes.len() as u64 - 12);
    }

    #[test]
    fn rejects_a_header_longer_than_the_file_or_the_limit() {
        let mut bytes = file_with_header("{}", &[]);
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = read(&bytes).unwrap_err();
        assert!(err.starts_with("f.safetensors: "), "{err}");
        assert!(err.contains(&u64::MAX.to_string()), "{err}");
        let mut big = file_with_header("{}", &vec![b' '; MAX_HEADER_BYTES as usize]);
        big[..8].copy_from_slice(&(MAX_HEADER_BYTES + 1).to_le_bytes());
        assert!(read(&big).unwrap_err().contains("more than the limit"));
    }

    #[test]
    fn rejects_offsets_beyond_the_data_before_adding_them_up() {
        let huge = usize::MAX / 8;
        let header =
            format!(r#"{{"a":{{"dtype":"U8","shape":[{huge}],"data_offsets":[0,{huge}]}}}}"#);
        let err = read(&file_with_header(&header, &[])).unwrap_err();
        assert!(err.contains("tensor 'a' claims data offset"), "{err}");
    }

    #[test]
    fn rejects_sizes_gaps_and_trailing_bytes() {
        let cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                "takes 12 bytes",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8,
                "without gap",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                8,
                "holds 8 data bytes",
            ),
            (
                r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
                2,
                "whole bytes",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
                0,
                "overflows",
            ),
        ];
        for (header, data, expected) in cases {
            let err = read(&file_with_header(header, &vec![0; data])).unwrap_err();
            assert!(err.contains(expected), "{header}: {err}");
        }
    }

    #[test]
    fn rejects_duplicates_naming_them() {
        let entry = r#""w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#;
        let err = read(&file_with_header(&format!("{{{entry},{entry}}}"), &[0])).unwrap_err();
        assert!(err.contains("tensor 'w' appears twice"), "{err}");
        let metadata = r#"{"__metadata__":{"k":"a","k":"a"}}"#;
        let err = read(&file_with_header(metadata, &[])).unwrap_err();
        assert!(err.contains("metadata entry 'k' appears twice"), "{err}");
        let blocks = r#"{"__metadata__":{},"__metadata__":{}}"#;
        assert!(read(&file_with_header(blocks, &[]))
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn bounds_entries_and_dimensions() {
        let entries: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!(r#""m{i}":"""#)).collect();
        let header = format!(r#"{{"__metadata__":{{{}}}}}"#, entries.join(","));
        let err = read(&file_with_header(&header, &[])).unwrap_err();
        assert!(
            err.contains(&format!("more than {MAX_ENTRIES} entries")),
            "{err}"
        );
        let shape = vec!["1"; MAX_RANK + 1].join(",");
        let header = format!(r#"{{"a":{{"dtype":"U8","shape":[{shape}],"data_offsets":[0,1]}}}}"#);
        let err = read(&file_with_header(&header, &[0])).unwrap_err();
        assert!(
            err.contains("tensor 'a'") && err.contains("dimensions"),
            "{err}"
        );
    }

    #[test]
    fn rejects_short_and_non_json_headers() {
        for bytes in [
            vec![1, 2, 3],
            file_with_header("[1]", &[]),
            file_with_header("{\"a\":", &[]),
            file_with_header(r#"{"__metadata__":{"format":1}}"#, &[]),
            file_with_header(
                r#"{"a":{"dtype":"F33","shape":[],"data_offsets":[0,0]}}"#,
                &[],
            ),
        ] {
            assert!(read(&bytes).is_err());
        }
    }
}
