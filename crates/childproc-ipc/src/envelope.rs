//! The pool's envelope, `{ id, <key>: value }`: a task (`task`) or its answer (`result`,
//! `error`), built once and filled in for each message.

use crate::value::Value;

/// `{ id, <key>: value }`, built once. A sender encodes it by reference
/// ([`Sender::send_ref_nowait`](crate::Sender::send_ref_nowait)), so sending a task or an
/// answer allocates nothing for the object around it: the same bytes as
/// `Value::object([("id", id), (key, value)])`. Not part of the API: the pool's and
/// [`serve`](crate::serve)'s own.
#[doc(hidden)]
#[derive(Debug)]
pub struct Envelope {
    fields: Vec<(String, Value)>,
}

impl Envelope {
    /// An envelope whose second field is `key`.
    pub fn new(key: &str) -> Self {
        Envelope {
            fields: vec![
                ("id".into(), Value::Undefined),
                (key.into(), Value::Undefined),
            ],
        }
    }

    /// `{ id, <key>: value }` as a plain object: what an envelope read opened (see
    /// [`Channel::open_envelopes`](crate::Channel::open_envelopes)) was as it was sent.
    pub fn whole(id: Value, key: &str, value: Value) -> Value {
        Value::object([("id", id), (key, value)])
    }

    /// Calls `send` with `{ id, <key>: value }`, then puts `value` back.
    pub fn with<T>(&mut self, id: Value, value: &mut Value, send: impl FnOnce(&Value) -> T) -> T {
        let mut fields = std::mem::take(&mut self.fields);
        if let [(_, at_id), (_, at_value)] = fields.as_mut_slice() {
            *at_id = id;
            std::mem::swap(at_value, value);
        }
        let message = Value::Object(fields);
        let result = send(&message);
        if let Value::Object(mut fields) = message {
            if let [_, (_, at_value)] = fields.as_mut_slice() {
                std::mem::swap(at_value, value);
            }
            self.fields = fields;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_the_object_it_stands_for_and_gives_the_value_back() {
        let mut envelope = Envelope::new("task");
        for (id, task) in [
            (1, Value::from("a")),
            (2, Value::object([("n", Value::from(3))])),
        ] {
            let mut value = task.clone();
            let seen = envelope.with(Value::from(id), &mut value, Value::clone);
            assert_eq!(
                seen,
                Value::object([("id", Value::from(id)), ("task", task.clone())])
            );
            assert_eq!(
                crate::json::stringify(&seen).unwrap(),
                crate::json::stringify(&Value::object([
                    ("id", Value::from(id)),
                    ("task", task.clone())
                ]))
                .unwrap()
            );
            assert_eq!(value, task, "the value is the caller's again");
        }
    }
}
