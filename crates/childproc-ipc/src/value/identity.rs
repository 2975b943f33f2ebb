//! Object identity while walking a value in the message's order: the [`Value::Shared`] ids
//! met so far, for the codecs that write identity ([`Anchors`]) and for those that must
//! write copies instead ([`Expansion`], JSON).

use std::collections::HashMap;

use crate::{IpcError, Result, Value};

/// The [`Value::Shared`] ids met so far, each with what a writer or reader keeps for it
/// (V8's object number, say). Nothing is allocated until the first `Shared`.
#[derive(Debug)]
pub(crate) struct Anchors<T> {
    ids: HashMap<u32, T>,
}

impl<T> Default for Anchors<T> {
    fn default() -> Self {
        Anchors {
            ids: HashMap::new(),
        }
    }
}

impl<T: Copy> Anchors<T> {
    /// Records `id`; `false` if it was already shared (each id may be shared once).
    pub(crate) fn define(&mut self, id: u32, what: T) -> bool {
        match self.ids.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(what);
                true
            }
        }
    }

    /// What was recorded for `id`, if a `Shared` with it came before.
    pub(crate) fn get(&self, id: u32) -> Option<T> {
        self.ids.get(&id).copied()
    }
}

/// Why a value's identity cannot be written: for [`IpcError::Unsupported`].
pub(crate) fn unsupported_shared(id: u32, value: &Value) -> IpcError {
    if value.is_object() {
        IpcError::unsupported(format!(
            "Value::Shared id {id} appears twice in the message"
        ))
    } else {
        IpcError::unsupported(format!(
            "Value::Shared id {id} around {}: only objects have identity (not a primitive, \
             a Shared or a Ref)",
            kind_name(value)
        ))
    }
}

/// A `Ref` naming no `Shared` before it or around it.
pub(crate) fn dangling_ref(id: u32) -> IpcError {
    IpcError::unsupported(format!(
        "Value::Ref({id}) names no Value::Shared before it or around it in the message"
    ))
}

/// The variant's name, for error messages.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Undefined => "Undefined",
        Value::Null => "Null",
        Value::Bool(_) => "Bool",
        Value::Number(_) => "Number",
        Value::BigInt(_) => "BigInt",
        Value::String(_) => "String",
        Value::Bytes(_) => "Bytes",
        Value::Array(_) => "Array",
        Value::SparseArray(_) => "SparseArray",
        Value::Object(_) => "Object",
        Value::Map(_) => "Map",
        Value::Set(_) => "Set",
        Value::Date(_) => "Date",
        Value::RegExp { .. } => "RegExp",
        Value::Error(_) => "Error",
        Value::TypedArray(_) => "TypedArray",
        Value::DataView(_) => "DataView",
        Value::ArrayBuffer(_) => "ArrayBuffer",
        Value::Boxed(_) => "Boxed",
        Value::Shared { .. } => "Shared",
        Value::Ref(_) => "Ref",
    }
}

/// Writing identity as copies, as `JSON.stringify` does: a shared object is written at each
/// of its places, a cycle is an error. The copies are bounded ([`Expansion::LIMIT`]), so a
/// small value whose references nest cannot make a huge text.
#[derive(Debug, Default)]
pub(crate) struct Expansion<'a> {
    anchors: HashMap<u32, &'a Value>,
    /// The shared objects being written (a `Ref` to one of them is a cycle).
    open: Vec<u32>,
    /// How many `Ref`s the writer is inside.
    inside: usize,
    /// Values written inside `Ref`s so far.
    copied: usize,
}

impl<'a> Expansion<'a> {
    /// At most this many values are written as copies for `Ref`s in one message.
    pub(crate) const LIMIT: usize = 1 << 22;

    /// A `Shared` is about to be written: the object to write.
    pub(crate) fn enter_shared(&mut self, id: u32, value: &'a Value) -> Result<&'a Value> {
        // Inside a copy, the copied object's own `Shared`s were met where it was first written.
        if self.inside == 0 && (!value.is_object() || self.anchors.insert(id, value).is_some()) {
            return Err(unsupported_shared(id, value));
        }
        self.open.push(id);
        Ok(value)
    }

    /// A `Ref` is about to be written: the object to copy. A cycle is an error, as in
    /// `JSON.stringify` ("Converting circular structure to JSON").
    pub(crate) fn enter_ref(&mut self, id: u32) -> Result<&'a Value> {
        if self.open.contains(&id) {
            return Err(IpcError::unsupported(format!(
                "a cyclic value in JSON (Value::Ref({id}) inside its own Value::Shared; \
                 JSON.stringify throws \"Converting circular structure to JSON\")"
            )));
        }
        let target = *self.anchors.get(&id).ok_or_else(|| dangling_ref(id))?;
        self.open.push(id);
        self.inside += 1;
        Ok(target)
    }

    /// The `Shared` or `Ref` entered last is written.
    pub(crate) fn leave(&mut self, was_ref: bool) {
        self.open.pop();
        if was_ref {
            self.inside -= 1;
        }
    }

    /// One value is about to be written: counted if it is a copy.
    pub(crate) fn count(&mut self) -> Result<()> {
        if self.inside > 0 {
            self.copied += 1;
            if self.copied > Self::LIMIT {
                return Err(IpcError::unsupported(format!(
                    "shared references that would write more than {} copied values as JSON",
                    Self::LIMIT
                )));
            }
        }
        Ok(())
    }
}

/// Checks a decoded value's identity: each `Shared` id once and around an object, each `Ref`
/// naming a `Shared` around it or before it. `Err` says what is wrong, for
/// [`IpcError::Malformed`]. The decoder checked the nesting, which bounds the recursion.
pub(crate) fn check(value: &Value) -> std::result::Result<(), String> {
    fn walk(v: &Value, seen: &mut Anchors<()>) -> std::result::Result<(), String> {
        match v {
            Value::Shared { id, value } => {
                if !value.is_object() {
                    return Err(format!(
                        "shared id {id} is around a {}, not an object",
                        kind_name(value)
                    ));
                }
                if !seen.define(*id, ()) {
                    return Err(format!("shared id {id} appears twice"));
                }
                walk(value, seen)
            }
            Value::Ref(id) if seen.get(*id).is_none() => Err(format!(
                "reference to id {id} comes before its shared object"
            )),
            _ => children(v).try_for_each(|c| walk(c, seen)),
        }
    }
    walk(value, &mut Anchors::default())
}

/// The values directly inside `v`, in the message's order.
pub(crate) fn children(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) | Value::Set(items) => Box::new(items.iter()),
        Value::Object(pairs) => Box::new(pairs.iter().map(|(_, v)| v)),
        Value::Map(entries) => Box::new(entries.iter().flat_map(|(k, v)| [k, v])),
        Value::SparseArray(a) => Box::new(
            a.elements
                .iter()
                .map(|(_, v)| v)
                .chain(a.properties.iter().map(|(_, v)| v)),
        ),
        Value::Error(e) => Box::new(e.cause.iter()),
        Value::Boxed(v) => Box::new(std::iter::once(&**v)),
        Value::Shared { value, .. } => Box::new(std::iter::once(&**value)),
        _ => Box::new(std::iter::empty()),
    }
}
