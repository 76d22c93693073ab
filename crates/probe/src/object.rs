//! Reads one flat JSON object of the schema field by field; every error
//! names the field, as the agent reports bad batches.

use crate::SCHEMA_VERSION;
use crate::json::Value;

pub struct Object<'a> {
    members: &'a [(String, Value)],
}

impl<'a> Object<'a> {
    pub fn new(value: &'a Value) -> Result<Self, String> {
        match value {
            Value::Object(members) => Ok(Object { members }),
            other => Err(format!("must be an object, got {}", other.kind())),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The first key not in `known`.
    pub fn unknown_key(&self, known: &[&str]) -> Option<&'a str> {
        self.members.iter().map(|(key, _)| key.as_str()).find(|key| !known.contains(key))
    }

    /// `v` may be left out, but if present it must be this schema's.
    pub fn check_version(&self) -> Result<(), String> {
        match self.get("v") {
            Some(v) if v.as_u64() != Some(SCHEMA_VERSION) => Err(format!("field \"v\": unsupported schema version {}, expected {SCHEMA_VERSION}", show(v))),
            _ => Ok(()),
        }
    }

    pub fn string(&self, key: &str) -> Result<&'a str, String> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(format!("field {key:?}: must be a string, got {}", show(other))),
            None => Err(format!("missing field {key:?}")),
        }
    }

    /// A string that may be absent or null.
    pub fn opt_string(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            _ => self.string(key).map(Some),
        }
    }

    /// A required string read by `parse`, whose errors get the field's name.
    pub fn parsed<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, String> {
        parse(self.string(key)?).map_err(|e| format!("field {key:?}: {e}"))
    }

    /// As `parsed`, for a string that may be absent or null.
    pub fn opt_parsed<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Option<T>, String> {
        self.opt_string(key)?.map(parse).transpose().map_err(|e| format!("field {key:?}: {e}"))
    }

    /// An integer within `min..=max` that may be absent (but not null).
    pub fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(format!("field {key:?}: must be an integer {min}..{max}, got {}", show(v))),
            },
        }
    }

    pub fn required_integer(&self, key: &str, min: u64, max: u64) -> Result<u64, String> {
        self.integer(key, min, max)?.ok_or_else(|| format!("missing field {key:?}"))
    }

    /// An integer within `min..=max` that may be absent or null.
    pub fn nullable_integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        match self.get(key) {
            Some(Value::Null) => Ok(None),
            _ => self.integer(key, min, max),
        }
    }
}

/// A value as it appears in error messages.
pub fn show(value: &Value) -> String {
    match value {
        Value::Number(text) => text.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        other => other.kind().to_string(),
    }
}
