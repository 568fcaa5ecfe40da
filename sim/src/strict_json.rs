//! JSON with no duplicate keys. `serde_json` keeps the last of two equal keys without a word; in a
//! fixture or an adapter's line a duplicate is a mistake (or a lie) that must not pass silently.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Parses `text` as JSON, rejecting an object with two equal keys (at any depth), and the rest of
/// what `serde_json` rejects.
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value.0)
}

struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!("the key `{key}` appears twice in one object")));
            }
        }
        Ok(serde_json::Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn duplicates_are_rejected_at_any_depth_and_the_rest_parses_as_serde_json_does() {
        assert!(super::parse(r#"{"a":1,"a":2}"#).unwrap_err().contains("the key `a` appears twice"));
        assert!(super::parse(r#"{"x":[{"b":1,"b":1}]}"#).unwrap_err().contains("`b` appears twice"));
        assert!(super::parse(r#"{"a":1} trailing"#).is_err());
        for text in [r#"{"a":[1,-2,3.5,"s",null,true,{"b":{}}]}"#, "[]", "0", r#""x""#] {
            assert_eq!(super::parse(text).unwrap(), serde_json::from_str::<serde_json::Value>(text).unwrap());
        }
    }
}
