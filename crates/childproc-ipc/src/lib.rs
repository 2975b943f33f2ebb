//! Node.js-compatible IPC for [childproc](https://docs.rs/childproc).
//!
//! This crate is what a child program needs to talk to its parent over Node's IPC channel;
//! it depends on nothing of the process-spawning side. Today it holds the structured-clone
//! [`Value`] model that every codec carries and that `childproc::Event::Message` delivers;
//! the codecs and the channel build on it.
//!
//! ```
//! use childproc_ipc::Value;
//! let v = Value::object([("hello", Value::from("world")), ("n", Value::from(1.5))]);
//! assert_eq!(v.get("hello"), Some(&Value::from("world")));
//! ```

mod value;

pub use value::Value;
