//! Run an interactive shell on a pseudo-terminal, type into it, resize it, read what it
//! shows. Run with `cargo run --example pty_shell`.

#![allow(clippy::print_stdout)]

use childproc::{Command, Pty, PtySize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new("sh")
        .arg("-i")
        .env("PS1", "$ ")
        .pty(PtySize { rows: 24, cols: 80 })
        .spawn()?;
    let mut pty = child.pty.take().expect("the child runs on a pty");
    // What is typed is echoed by the terminal and run by the shell.
    pty.write_all(b"tty; stty size\n").await?;
    print!("{}", read_until(&mut pty, "24 80").await?);
    // The shell's terminal changes size (it gets SIGWINCH).
    pty.resize(PtySize {
        rows: 50,
        cols: 132,
    })?;
    pty.write_all(b"stty size; exit\n").await?;
    // End-of-file once the shell (the last process on the terminal) is gone.
    let mut rest = String::new();
    pty.read_to_string(&mut rest).await?;
    print!("{rest}");
    let status = child.closed().await?;
    println!("[shell {status}]");
    Ok(())
}

/// What the terminal shows until `text` appears in it.
async fn read_until(pty: &mut Pty, text: &str) -> std::io::Result<String> {
    let mut screen = Vec::new();
    let mut buf = [0; 1024];
    while !String::from_utf8_lossy(&screen).contains(text) {
        let n = pty.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        screen.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&screen).into_owned())
}
