//! A corpus of hostile files for the loader: truncations at every header edge, huge header
//! lengths, nested and wide JSON, absurd shapes, duplicate names, dtype mismatches, and files
//! that are not regular files; plus a few valid files that must still load.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};

use super::{edited, renamed, small_model_bytes, split, with_header};

/// What a case's file is.
pub enum Content {
    /// A regular file with these bytes.
    Bytes(Vec<u8>),
    /// A sparse file of `len` bytes that starts with these bytes.
    Sparse(Vec<u8>, u64),
    /// A named pipe.
    Fifo,
    /// A directory.
    Directory,
    /// A symbolic link to this path (relative to the corpus folder, or absolute).
    Symlink(String),
}

/// One hostile (or valid) file.
pub struct Case {
    /// A short unique name, also the file name.
    pub name: String,
    /// The file.
    pub content: Content,
    /// Whether it must load (`Some(true)`), must fail (`Some(false)`), or may do either (a
    /// random bit flip can leave a valid file).
    pub valid: Option<bool>,
}

fn case(name: impl Into<String>, bytes: Vec<u8>) -> Case {
    Case {
        name: name.into(),
        content: Content::Bytes(bytes),
        valid: Some(false),
    }
}

/// A small deterministic generator (xorshift64*), so that the corpus is the same every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The header text and data of `bytes`, with the header rewritten as `header`.
fn with_map(header: &Map<String, Value>, data: &[u8]) -> Vec<u8> {
    with_header(&Value::Object(header.clone()).to_string(), data)
}

/// The small model's file with its architecture JSON edited.
fn architecture(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    edited(bytes, |h| {
        let metadata = h["__metadata__"].as_object_mut().unwrap();
        let mut model: Value = serde_json::from_str(metadata["model"].as_str().unwrap()).unwrap();
        edit(&mut model);
        metadata.insert("model".into(), model.to_string().into());
    })
}

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let bytes = small_model_bytes();
    let (header, data) = split(&bytes);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header_end = 8 + header_len;
    let mut cases = vec![Case {
        name: "valid".into(),
        content: Content::Bytes(bytes.clone()),
        valid: Some(true),
    }];

    // Truncations: inside the length, at every structural character of the header (before
    // and after it), at the header's end and at every tensor's boundaries.
    let mut cuts: Vec<usize> = (0..=16).collect();
    for (i, &b) in bytes[8..header_end].iter().enumerate() {
        if b"{}[],:\"".contains(&b) {
            cuts.extend([8 + i, 9 + i]);
        }
    }
    cuts.extend([header_end - 1, header_end + 1, bytes.len() - 1]);
    for entry in header.values() {
        if let Some([start, end]) = entry["data_offsets"].as_array().map(|o| [&o[0], &o[1]]) {
            for offset in [start, end] {
                let at = header_end + offset.as_u64().unwrap() as usize;
                cuts.extend([at - 1, at, at + 1]);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts.into_iter().filter(|&c| c < bytes.len()) {
        cases.push(case(format!("truncated-{cut}"), bytes[..cut].to_vec()));
    }

    // Header lengths that lie.
    let total = bytes.len() as u64;
    for claimed in [
        0,
        1,
        2,
        header_len as u64 - 1,
        header_len as u64 + 1,
        total - 8,
        total - 7,
        100_000_001,
        1 << 32,
        1 << 63,
        u64::MAX - 7,
        u64::MAX,
    ] {
        let mut lying = bytes.clone();
        lying[..8].copy_from_slice(&claimed.to_le_bytes());
        cases.push(case(format!("length-{claimed}"), lying));
    }

    // Nested and wide JSON.
    let deep = 100_000;
    cases.push(case(
        "nested-arrays",
        with_header(&nested("[", "", "]", deep), &[]),
    ));
    cases.push(case(
        "nested-objects",
        with_header(&nested(r#"{"a":"#, "{}", "}", deep), &[]),
    ));
    let mut h = header.clone();
    h["__metadata__"]["model"] = nested("[", "", "]", deep).into();
    cases.push(case("nested-architecture", with_map(&h, &data)));
    cases.push(case(
        "nested-config",
        architecture(&bytes, |a| {
            a["layers"][1]["config"]["units"] =
                serde_json::from_str(&nested("[", "", "]", 120)).unwrap();
        }),
    ));
    cases.push(case(
        "nested-config-past-the-limit",
        edited(&bytes, |h| {
            let model = h["__metadata__"]["model"].as_str().unwrap().to_string();
            let deep_units = nested("[", "1", "]", 10_000);
            h["__metadata__"]["model"] = model
                .replacen("\"units\":2", &format!("\"units\":{deep_units}"), 1)
                .into();
        }),
    ));
    cases.push(case(
        "wide-config-array",
        architecture(&bytes, |a| {
            a["layers"][1]["config"]["junk"] = json!(vec![0; 5_000_000])
        }),
    ));
    cases.push(case(
        "many-config-objects",
        architecture(&bytes, |a| {
            a["layers"][1]["config"]["junk"] = json!(vec![json!({"a": 0}); 1_000_000])
        }),
    ));
    for (calls, valid) in [(20_000, true), (200_000, false)] {
        cases.push(Case {
            valid: Some(valid),
            ..case(
                format!("calls-{calls}"),
                architecture(&bytes, |a| {
                    let call = json!({"layer": "hidden", "inbound": [["in", 0, 0]]});
                    let nodes = a["nodes"].as_array_mut().unwrap();
                    let last = nodes.pop().unwrap();
                    nodes.extend(std::iter::repeat_n(call, calls));
                    nodes.push(last);
                    a["outputs"] = json!([["out", 0, 0]]);
                }),
            )
        });
    }
    let many_metadata: Map<String, Value> = (0..1_000_000)
        .map(|i| (format!("m{i}"), Value::from("")))
        .collect();
    let mut h = header.clone();
    h["__metadata__"]
        .as_object_mut()
        .unwrap()
        .extend(many_metadata);
    cases.push(case("million-metadata-entries", with_map(&h, &data)));
    let million: Vec<String> = (0..1_000_000)
        .map(|i| format!(r#""t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#))
        .collect();
    cases.push(case(
        "million-empty-tensors",
        with_header(&format!("{{{}}}", million.join(",")), &[]),
    ));
    let mut h = header.clone();
    h["hidden/kernel"]["shape"] = json!(vec![1; 1_000_000]);
    cases.push(case("million-dimensions", with_map(&h, &data)));
    let mut h = header.clone();
    let entry = h.remove("out/bias").unwrap();
    h.insert("b".repeat(10_000_000), entry);
    cases.push(case("ten-megabyte-name", with_map(&h, &data)));
    let mut h = header.clone();
    h["__metadata__"]["extra/big"] = "x".repeat(50_000_000).into();
    cases.push(Case {
        name: "fifty-megabyte-metadata-value".into(),
        content: Content::Bytes(with_map(&h, &data)),
        valid: Some(true),
    });
    let mut h = header.clone();
    h["__metadata__"]["extra/escapes"] = "\u{0}".repeat(1_000_000).into();
    cases.push(Case {
        name: "escaped-metadata-value".into(),
        content: Content::Bytes(with_map(&h, &data)),
        valid: Some(true),
    });

    // Absurd shapes and offsets.
    let shape_cases: [(&str, Value); 8] = [
        ("shape-huge", json!([1u64 << 62, 4])),
        ("shape-overflow", json!([1u64 << 40, 1u64 << 40])),
        ("shape-usize-max", json!([u64::MAX])),
        ("shape-negative", json!([-3, 2])),
        ("shape-float", json!([1.5, 2])),
        ("shape-string", json!(["3", 2])),
        ("shape-zero", json!([0, 2])),
        ("shape-not-a-list", json!(6)),
    ];
    for (name, shape) in shape_cases {
        let mut h = header.clone();
        h["hidden/kernel"]["shape"] = shape;
        cases.push(case(name, with_map(&h, &data)));
    }
    let offset_cases: [(&str, Value); 6] = [
        ("offsets-huge", json!([0, 1u64 << 63])),
        ("offsets-reversed", json!([24, 0])),
        ("offsets-overlapping", json!([4, 28])),
        ("offsets-three", json!([0, 24, 24])),
        ("offsets-negative", json!([-24, 0])),
        ("offsets-missing", Value::Null),
    ];
    for (name, offsets) in offset_cases {
        let mut h = header.clone();
        h["hidden/kernel"]["data_offsets"] = offsets;
        cases.push(case(name, with_map(&h, &data)));
    }
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[0; 16]);
    cases.push(case("trailing-bytes", trailing));
    let mut h = header.clone();
    let end = data.len() as u64;
    h.insert(
        "optimizer/nibbles".into(),
        json!({"dtype": "F4", "shape": [3], "data_offsets": [end, end + 2]}),
    );
    cases.push(case(
        "misaligned-f4",
        with_map(&h, &[data.clone(), vec![0; 2]].concat()),
    ));
    let mut h = header.clone();
    h.insert(
        "optimizer/scale".into(),
        json!({"dtype": "F8_E8M0", "shape": [1], "data_offsets": [end, end + 1]}),
    );
    cases.push(case(
        "unholdable-dtype",
        with_map(&h, &[data.clone(), vec![0; 1]].concat()),
    ));

    // Duplicates.
    let entry = |name: &str| format!("{}:{}", json!(name), header[name]);
    let all: Vec<String> = header.keys().map(|k| entry(k)).collect();
    cases.push(case(
        "duplicate-tensor-same-bytes",
        with_header(
            &format!("{{{},{}}}", all.join(","), entry("out/bias")),
            &data,
        ),
    ));
    let mut other = header["out/bias"].clone();
    other["data_offsets"] = json!([0, 4]);
    cases.push(case(
        "duplicate-tensor-other-bytes",
        with_header(
            &format!("{{{},\"out/bias\":{other}}}", all.join(",")),
            &data,
        ),
    ));
    cases.push(case(
        "duplicate-metadata-block",
        with_header(
            &format!("{{{},{}}}", all.join(","), entry("__metadata__")),
            &data,
        ),
    ));
    let metadata = header["__metadata__"].to_string();
    let doubled = metadata.replacen('{', r#"{"format_version":"1","#, 1);
    let rest: Vec<String> = header
        .keys()
        .filter(|k| *k != "__metadata__")
        .map(|k| entry(k))
        .collect();
    cases.push(case(
        "duplicate-metadata-key",
        with_header(
            &format!("{{\"__metadata__\":{doubled},{}}}", rest.join(",")),
            &data,
        ),
    ));
    let kernel = header["hidden/kernel"].to_string();
    let twice_dtype = kernel.replacen('{', r#"{"dtype":"F32","#, 1);
    let text = all
        .iter()
        .map(|e| {
            if e.starts_with("\"hidden/kernel\"") {
                format!("\"hidden/kernel\":{twice_dtype}")
            } else {
                e.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    cases.push(case(
        "duplicate-field",
        with_header(&format!("{{{text}}}"), &data),
    ));
    cases.push(case(
        "duplicate-layer",
        architecture(&bytes, |a| {
            let copy = a["layers"][1].clone();
            a["layers"].as_array_mut().unwrap().push(copy);
        }),
    ));

    // Dtypes.
    for (name, dtype) in [
        ("dtype-i32", json!("I32")),
        ("dtype-u8-short", json!("U8")),
        ("dtype-unknown", json!("F33")),
        ("dtype-number", json!(32)),
        ("dtype-bool", json!("BOOL")),
    ] {
        let mut h = header.clone();
        h["hidden/kernel"]["dtype"] = dtype;
        cases.push(case(name, with_map(&h, &data)));
    }

    // Metadata.
    let metadata_edits: [(&str, &str, Value); 7] = [
        ("format-missing", "format", Value::Null),
        ("format-version-2", "format_version", json!("2")),
        ("format-version-huge", "format_version", json!("1e400")),
        ("model-not-a-string", "model", json!(3)),
        ("model-missing", "model", Value::Null),
        (
            "compile-config-broken",
            "compile_config",
            json!("{\"loss\":"),
        ),
        (
            "compile-config-nested",
            "compile_config",
            json!(nested("[", "", "]", 100_000)),
        ),
    ];
    for (name, key, value) in metadata_edits {
        let mut h = header.clone();
        let metadata = h["__metadata__"].as_object_mut().unwrap();
        if value.is_null() {
            metadata.remove(key);
        } else {
            metadata.insert(key.into(), value);
        }
        cases.push(case(name, with_map(&h, &data)));
    }

    // Names.
    for (name, hostile) in [
        ("name-escape", "\u{1b}]0;owned\u{7}"),
        ("name-slash", "a/b"),
        ("name-empty", ""),
        ("name-newline", "x\ny"),
        ("name-bidi", "abc\u{202e}cba"),
    ] {
        cases.push(case(name, renamed(&bytes, "hidden", hostile)));
    }
    cases.push(Case {
        name: "name-unicode".into(),
        content: Content::Bytes(renamed(&bytes, "hidden", "couche_é_隠れ")),
        valid: Some(true),
    });

    // Odd but valid encodings.
    let padded = format!(
        "{}{}",
        String::from_utf8_lossy(&bytes[8..header_end]),
        " ".repeat(64)
    );
    cases.push(Case {
        name: "header-padded".into(),
        content: Content::Bytes(with_header(&padded, &data)),
        valid: Some(true),
    });
    let mut not_utf8 = bytes.clone();
    not_utf8[12] = 0xff;
    cases.push(case("header-not-utf8", not_utf8));
    let bom = format!("\u{feff}{}", String::from_utf8_lossy(&bytes[8..header_end]));
    cases.push(case("header-bom", with_header(&bom, &data)));
    cases.push(case(
        "header-trailing-garbage",
        with_header(
            &format!("{} x", String::from_utf8_lossy(&bytes[8..header_end])),
            &data,
        ),
    ));

    // Random bytes and bit flips.
    let mut random = Random(0x5eed);
    for i in 0..64 {
        let len = (random.next() % 4096) as usize;
        let blob: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
        cases.push(Case {
            valid: None,
            ..case(format!("random-{i}"), blob)
        });
    }
    for i in 0..256 {
        let mut flipped = bytes.clone();
        let at = (random.next() % header_end as u64) as usize;
        flipped[at] ^= 1 << (random.next() % 8);
        cases.push(Case {
            valid: None,
            ..case(format!("flip-{i}-at-{at}"), flipped)
        });
    }

    // Huge sparse files, and files that are not regular files.
    cases.push(Case {
        name: "sparse-4gib-tiny-header".into(),
        content: Content::Sparse(with_header("{}", &[]), 4 << 30),
        valid: Some(false),
    });
    cases.push(Case {
        name: "sparse-4gib-valid-header".into(),
        content: Content::Sparse(bytes.clone(), 4 << 30),
        valid: Some(false),
    });
    cases.push(case("empty", Vec::new()));
    for (name, content) in [
        ("fifo", Content::Fifo),
        ("directory", Content::Directory),
        ("dev-null", Content::Symlink("/dev/null".into())),
        ("dev-zero", Content::Symlink("/dev/zero".into())),
        ("link-to-fifo", Content::Symlink("fifo".into())),
        ("dangling-link", Content::Symlink("absent".into())),
        ("loop-a", Content::Symlink("loop-b".into())),
        ("loop-b", Content::Symlink("loop-a".into())),
    ] {
        cases.push(Case {
            name: name.into(),
            content,
            valid: Some(false),
        });
    }
    cases
}

/// Writes `cases` into `dir`, returning each file's path.
pub fn materialize(cases: &[Case], dir: &Path) -> Vec<PathBuf> {
    cases
        .iter()
        .map(|c| {
            let path = dir.join(&c.name);
            match &c.content {
                Content::Bytes(bytes) => fs::write(&path, bytes).unwrap(),
                Content::Sparse(bytes, len) => {
                    fs::write(&path, bytes).unwrap();
                    let file = fs::File::options().write(true).open(&path).unwrap();
                    file.set_len(*len).unwrap();
                }
                Content::Fifo => {
                    assert!(Command::new("mkfifo")
                        .arg(&path)
                        .status()
                        .unwrap()
                        .success())
                }
                Content::Directory => fs::create_dir(&path).unwrap(),
                Content::Symlink(target) => symlink(target, &path).unwrap(),
            }
            path
        })
        .collect()
}
