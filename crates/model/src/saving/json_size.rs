//! A bound on the memory JSON text takes once parsed into `serde_json::Value`s, estimated in
//! one pass that allocates nothing, so that a hostile architecture is refused before it is
//! parsed: 16 MB of `[{"a":0},{"a":0},...]` would take over a gigabyte as values.

use std::fmt;
use std::mem::size_of;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The most memory an architecture or a compile config may take once parsed (estimated).
pub const MAX_PARSED_BYTES: u64 = 64 << 20;

/// A value, and the slot it takes in its parent's vector or map (over-allocated up to 2x).
const VALUE: u64 = 2 * size_of::<Value>() as u64;
/// A map's first node (a B-tree leaf of 11 keys and values), allocated at its first entry.
const MAP_NODE: u64 = 11 * (size_of::<String>() + size_of::<Value>()) as u64 + 16;
/// A map entry's key and value slots.
const MAP_ENTRY: u64 = (size_of::<String>() + size_of::<Value>()) as u64;

/// Checks that `json` would take at most [`MAX_PARSED_BYTES`] parsed; text that is not JSON
/// passes, for the parser to report.
pub fn check_parsed_size(what: &str, json: &str) -> Result<(), String> {
    let mut total = 0;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let _ = Size { total: &mut total }.deserialize(&mut deserializer);
    if total > MAX_PARSED_BYTES {
        return Err(format!(
            "{what} would take more than {MAX_PARSED_BYTES} bytes of memory once parsed"
        ));
    }
    Ok(())
}

/// Adds a value's estimated size to `total`, stopping once it is over the limit.
struct Size<'a> {
    total: &'a mut u64,
}

impl Size<'_> {
    fn add<E: de::Error>(&mut self, bytes: u64) -> Result<(), E> {
        *self.total += bytes;
        if *self.total > MAX_PARSED_BYTES {
            return Err(E::custom("too large"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Size<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Size<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.add(VALUE)
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.add(VALUE)
    }

    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.add(VALUE)
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.add(VALUE)
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.add(VALUE)
    }

    fn visit_str<E: de::Error>(mut self, s: &str) -> Result<(), E> {
        self.add(VALUE + s.len() as u64)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.add(VALUE)?;
        while seq
            .next_element_seed(Size {
                total: &mut *self.total,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.add(VALUE)?;
        let mut first = true;
        while let Some(key_len) = map.next_key_seed(KeyLength)? {
            let node = if std::mem::take(&mut first) {
                MAP_NODE
            } else {
                0
            };
            self.add(node + MAP_ENTRY + key_len)?;
            map.next_value_seed(Size {
                total: &mut *self.total,
            })?;
        }
        Ok(())
    }
}

/// A map key's length, read without keeping the key.
struct KeyLength;

impl<'de> DeserializeSeed<'de> for KeyLength {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyLength {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        Ok(s.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_configs_pass_and_amplifying_ones_do_not() {
        let config = r#"{"name":"dense","units":784,"activation":"relu","kernel_initializer":
            {"class_name":"GlorotUniform","config":{"seed":null}},"use_bias":true}"#;
        assert_eq!(check_parsed_size("config", config), Ok(()));
        assert_eq!(check_parsed_size("config", "not json"), Ok(()));
        // 16 bytes of text per object, over 700 bytes parsed each.
        let objects = format!("[{}{{}}]", r#"{"a":0,"b":1},"#.repeat(100_000));
        let err = check_parsed_size("the architecture", &objects).unwrap_err();
        assert!(
            err.starts_with("the architecture would take more than"),
            "{err}"
        );
        let escaped_keys = format!("[{}0]", r#"{"A":0},"#.repeat(100_000));
        assert!(check_parsed_size("x", &escaped_keys).is_err());
        let numbers = format!("[{}0]", "0,".repeat(500_000));
        assert_eq!(check_parsed_size("x", &numbers), Ok(()));
    }
}
