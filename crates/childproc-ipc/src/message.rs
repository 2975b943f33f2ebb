//! What `send` accepts: a [`Value`], anything that converts into one, or a typed message
//! wrapped in [`Json`].

use bytes::BytesMut;
use serde::Serialize;
use tokio_util::codec::Encoder;

use crate::error::{IpcError, Result};
use crate::json::to_value;
use crate::typed::TypedCodec;
use crate::value::Value;

/// A message that can be sent on a channel: a [`Value`] (or anything `Into<Value>`: a `&str`,
/// a number, a `bool`, bytes), or a typed `Serialize` message wrapped in [`Json`].
pub trait IntoMessage {
    /// The message as a [`Value`]; an error if it cannot be represented (a typed message
    /// whose `Serialize` fails, or a map with non-string keys).
    fn into_message(self) -> Result<Value>;

    /// Appends the message's frame to `dst` in `codec`'s serialization (what a sender does
    /// with it); `dst` is left as it was on error. A [`Value`] is encoded as it is; a typed
    /// [`Json`] message goes straight to the wire bytes ([`TypedCodec`]).
    fn encode_with<C>(self, codec: &mut C, dst: &mut BytesMut) -> Result<()>
    where
        Self: Sized,
        C: Encoder<Value, Error = IpcError> + TypedCodec,
    {
        codec.encode(self.into_message()?, dst)
    }
}

impl<T: Into<Value>> IntoMessage for T {
    fn into_message(self) -> Result<Value> {
        Ok(self.into())
    }
}

/// A typed message, sent as what `JSON.stringify` would make of it: `child.send(Json(&req))`.
/// Decode one you receive with [`from_value`](crate::from_value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoMessage for Json<T> {
    fn into_message(self) -> Result<Value> {
        to_value(&self.0)
    }

    fn encode_with<C>(self, codec: &mut C, dst: &mut BytesMut) -> Result<()>
    where
        C: Encoder<Value, Error = IpcError> + TypedCodec,
    {
        codec.encode_typed(&self.0, dst)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::json::from_value;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Job {
        id: u32,
        name: String,
        tags: Vec<String>,
    }

    #[test]
    fn typed_and_plain_messages_become_the_same_values() {
        let job = Job {
            id: 7,
            name: "build".into(),
            tags: vec!["a".into()],
        };
        let value = Json(&job).into_message().unwrap();
        assert_eq!(
            value,
            Value::object([
                ("id", Value::from(7)),
                ("name", Value::from("build")),
                ("tags", Value::Array(vec![Value::from("a")])),
            ])
        );
        assert_eq!(from_value::<Job>(&value).unwrap(), job);
        assert_eq!("hi".into_message().unwrap(), Value::from("hi"));
        assert_eq!(Value::Null.into_message().unwrap(), Value::Null);
    }

    #[test]
    fn an_unrepresentable_typed_message_is_an_error() {
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1);
        let err = Json(&bad).into_message().unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
    }
}
