//! The "clone" section: the advanced codec (V8's format, Node's `serialization: 'advanced'`)
//! encoding and decoding the same values as Node's own `v8.serialize` / `v8.deserialize`.
//!
//! `xtask/bench/clone.js` builds three payloads in JavaScript (typed-array heavy, object
//! heavy, string heavy), writes each as the bytes Node's IPC channel sends, and times V8 on
//! them; this side decodes those bytes into the `Value` it times. A round runs Node (which
//! times itself: its startup is not counted) and then childproc; the table shows each side's
//! median over the rounds, as nanoseconds per call and throughput over the V8 payload's size,
//! and the ratio (Node's time over childproc's: above 1 is faster than Node).
//!
//! The rounds' medians are the shared harness's.

use std::path::Path;
use std::time::{Duration, Instant};

use childproc::ipc::{AdvancedCodec, Value};
use tokio_util::codec::{Decoder, Encoder};

use super::doc::{Section, Table};
use super::{median_f64, Env};
use crate::BoxError;

/// Interleaved rounds (`--quick`: 2).
const ROUNDS: usize = 9;

/// The payloads, in table order, as clone.js names them.
const PAYLOADS: [(&str, &str); 4] = [
    (
        "typed",
        "typed arrays (Float64Array, Int32Array, Uint8Array, 32 Float32Array rows)",
    ),
    (
        "objects",
        "1 000 records (numbers, strings, an array, a nested object, a Date)",
    ),
    (
        "strings",
        "2 000 log lines (ASCII, 1 in 10 Latin-1, 1 in 25 CJK)",
    ),
    (
        "cjk",
        "2 000 log lines, each with CJK text (two-byte strings in V8)",
    ),
];

/// One side's times for one payload, one per round (ns per call).
#[derive(Default, Clone)]
struct Times {
    encode: Vec<f64>,
    decode: Vec<f64>,
}

pub(super) fn run(quick: bool, env: &Env) -> Result<Section, BoxError> {
    let Some(node) = &env.node else {
        return Ok(Section {
            name: "clone",
            body: "## Structured clone: the advanced codec against V8\n\n\
                   Not measured: `node` was not found.\n"
                .into(),
        });
    };
    let dir = std::env::temp_dir().join(format!("childproc-bench-clone-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(node, env, &dir, quick);
    let _ = std::fs::remove_dir_all(&dir);
    let (ours, theirs, bytes) = result?;
    Ok(section(&ours, &theirs, &bytes, quick))
}

type Measured = (Vec<Times>, Vec<Times>, Vec<usize>);

fn measure(node: &super::Node, env: &Env, dir: &Path, quick: bool) -> Result<Measured, BoxError> {
    let rounds = if quick { 2 } else { ROUNDS };
    let scale = "1".to_string();
    let script = env.scripts.join("clone.js");
    let mut ours = vec![Times::default(); PAYLOADS.len()];
    let mut theirs = vec![Times::default(); PAYLOADS.len()];
    let mut bytes = vec![0; PAYLOADS.len()];
    for _ in 0..rounds {
        let out = node.run(
            &script,
            &[dir.display().to_string(), "1".into(), scale.clone()],
        )?;
        let line = childproc::ipc::json::parse(out.trim().as_bytes())?;
        for (i, (name, _)) in PAYLOADS.iter().enumerate() {
            let v8 = line
                .get(name)
                .ok_or_else(|| format!("clone.js printed no {name}"))?;
            let ns = |key: &str| -> Result<f64, BoxError> {
                v8.get(key)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| format!("clone.js printed no {name}.{key}").into())
            };
            theirs[i].encode.push(ns("encode_ns")?);
            theirs[i].decode.push(ns("decode_ns")?);
            bytes[i] = ns("bytes")? as usize;
            let (encode, decode) = ours_once(&dir.join(format!("{name}.bin")))?;
            ours[i].encode.push(encode);
            ours[i].decode.push(decode);
        }
    }
    Ok((ours, theirs, bytes))
}

/// Times the advanced codec on the payload in `file` (Node's IPC bytes): ns per encode and
/// per decode, each the mean over a batch of about 50 ms.
fn ours_once(file: &Path) -> Result<(f64, f64), BoxError> {
    let payload = std::fs::read(file)?;
    let mut frame = bytes::BytesMut::from(&(payload.len() as u32).to_be_bytes()[..]);
    frame.extend_from_slice(&payload);
    let value = AdvancedCodec::new()
        .decode(&mut frame.clone())?
        .ok_or("a payload that is not a whole frame")?;
    // The value writes what reads back as itself.
    let mut check = bytes::BytesMut::new();
    AdvancedCodec::new().encode(&value, &mut check)?;
    let back = AdvancedCodec::new().decode(&mut check)?;
    if back.as_ref().map(|v| format!("{v:?}")) != Some(format!("{value:?}")) {
        return Err(format!("{}: the value does not round-trip", file.display()).into());
    }
    let once = {
        let t = Instant::now();
        let mut f = frame.clone();
        std::hint::black_box(AdvancedCodec::new().decode(&mut f)?);
        t.elapsed()
    };
    let n = (Duration::from_millis(50).as_nanos() / once.as_nanos().max(1)).clamp(5, 2000) as usize;
    let mut out = bytes::BytesMut::with_capacity(frame.len() + 64);
    let t = Instant::now();
    for _ in 0..n {
        out.clear();
        AdvancedCodec::new().encode(&value, &mut out)?;
        std::hint::black_box(&out);
    }
    let encode = t.elapsed().as_nanos() as f64 / n as f64;
    // The frames a decode consumes are copied beforehand, outside the timing (Node's
    // deserialize reads its Buffer in place).
    let mut frames: Vec<bytes::BytesMut> = (0..n).map(|_| frame.clone()).collect();
    let t = Instant::now();
    for f in &mut frames {
        std::hint::black_box(AdvancedCodec::new().decode(f)?);
    }
    let decode = t.elapsed().as_nanos() as f64 / n as f64;
    Ok((encode, decode))
}

fn section(ours: &[Times], theirs: &[Times], bytes: &[usize], quick: bool) -> Section {
    let mbs = |bytes: usize, ns: f64| format!("{:.0} MB/s", bytes as f64 / ns * 1e3);
    let mut rows = Vec::new();
    for (i, (name, _)) in PAYLOADS.iter().enumerate() {
        let (oe, od) = (median_f64(&ours[i].encode), median_f64(&ours[i].decode));
        let (te, td) = (median_f64(&theirs[i].encode), median_f64(&theirs[i].decode));
        rows.push(vec![
            (*name).to_string(),
            format!("{:.0} KiB", bytes[i] as f64 / 1024.0),
            mbs(bytes[i], te),
            mbs(bytes[i], oe),
            format!("{:.2}×", te / oe),
            mbs(bytes[i], td),
            mbs(bytes[i], od),
            format!("{:.2}×", td / od),
        ]);
    }
    let table = Table {
        header: [
            "payload",
            "V8 bytes",
            "encode: V8",
            "childproc",
            "ratio",
            "decode: V8",
            "childproc",
            "ratio",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    let what: String = PAYLOADS
        .iter()
        .map(|(name, what)| format!("- `{name}`: {what}\n"))
        .collect();
    let body = format!(
        "## Structured clone: the advanced codec against V8\n\n\
         `cargo xtask bench clone`: `AdvancedCodec` encoding a `Value` and decoding a frame, \
         against Node's own `v8.serialize(value)` and `v8.deserialize(buffer)` on the same \
         values, built in JavaScript by `xtask/bench/clone.js` (childproc decodes the bytes \
         Node's IPC channel sends for them). Medians of {} interleaved rounds; throughput \
         over the V8 payload's size; the ratio is V8's time over childproc's (above 1: faster \
         than Node).\n\n{what}\n{}\n\
         Where childproc is behind: strings that V8 holds as UTF-16 (`cjk`). V8 copies them \
         as they are; a Rust `String` is UTF-8, so childproc transcodes every character each \
         way (a word at a time for ASCII runs, a character at a time otherwise: about 1 GB/s of \
         UTF-16 out, `codec/advanced/text.rs`). Reaching V8 there takes SIMD transcoding (what \
         simdutf does); the profile shows the transcoding and the length count before it as \
         the whole difference.\n",
        if quick { 2 } else { ROUNDS },
        table.render()
    );
    Section {
        name: "clone",
        body,
    }
}
