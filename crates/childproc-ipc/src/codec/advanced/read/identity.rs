//! The second walk of a frame with back-references: over the finished value (not the
//! bytes), numbering its objects as the reader did, it wraps each object that a `^` names
//! in [`Value::Shared`].

use crate::Value;

/// Wraps every object whose number is marked in `referenced` (numbers as [`Value::Shared`]
/// documents them: objects depth first, in order). The reader checked the nesting, which
/// bounds the recursion.
pub(super) fn wrap_shared(value: &mut Value, referenced: &[bool]) {
    let mut next = 0;
    walk(value, referenced, &mut next);
}

fn walk(value: &mut Value, referenced: &[bool], next: &mut u32) {
    if !value.is_object() {
        return;
    }
    let id = *next;
    *next += 1;
    match value {
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                walk(item, referenced, next);
            }
        }
        Value::SparseArray(array) => {
            for (_, item) in &mut array.elements {
                walk(item, referenced, next);
            }
            for (_, item) in &mut array.properties {
                walk(item, referenced, next);
            }
        }
        Value::Object(pairs) => {
            for (_, item) in pairs {
                walk(item, referenced, next);
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                walk(k, referenced, next);
                walk(v, referenced, next);
            }
        }
        Value::Error(error) => {
            if let Some(cause) = &mut error.cause {
                walk(cause, referenced, next);
            }
        }
        _ => {}
    }
    if referenced.get(id as usize).copied().unwrap_or(false) {
        let inner = std::mem::replace(value, Value::Null);
        *value = Value::shared(id, inner);
    }
}
