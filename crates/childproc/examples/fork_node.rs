//! Fork a Node.js script and talk to it: the manual's `sub.js` example, from Rust.
//! Run with `cargo run --example fork_node` (needs `node` on PATH).

#![allow(clippy::print_stdout)]

use childproc::ipc::Value;
use childproc::{fork, Event};
use futures_util::StreamExt;

/// The manual's sub.js: prints what it gets, sends `{ foo: 'bar', baz: NaN }` (NaN arrives as
/// null, as JSON carries it), and leaves when the parent disconnects.
const SUB_JS: &str = r#"
process.on('message', (m) => {
  console.log('CHILD got message:', m);
});
process.send({ foo: 'bar', baz: NaN });
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("childproc-fork-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sub = dir.join("sub.js");
    std::fs::write(&sub, SUB_JS)?;

    let n = fork(&sub, [] as [&str; 0]).spawn()?;
    let mut events = n.events();
    // Causes the child to print: CHILD got message: { hello: 'world' }
    n.send(Value::object([("hello", Value::from("world"))]))
        .await?;
    while let Some(event) = events.next().await {
        match event {
            Event::Message(m) => {
                println!("PARENT got message: {m:?}");
                n.disconnect(); // the child has nothing left to wait for, and exits
            }
            Event::Close(status) => println!("child closed with {status}"),
            other => println!("{other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
