//! The "typed" section: a `Serialize` / `Deserialize` message sent and received through a
//! `Value` (what `Json(&msg)` did before) against straight to and from the wire bytes
//! (`TypedCodec`), for the JSON and MessagePack serializations.
//!
//! The message is a realistic job record (ids, names, a list of tags, a nested owner, a map
//! of counters, an optional field, floats). Both paths write the same bytes (checked before
//! timing). Each round times every path on a batch of about 50 ms; the rounds interleave the
//! paths and the table shows medians (the shared harness's batch timing and medians).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use childproc::ipc::{from_value, to_value, Serialization, TypedCodec};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use super::doc::{Section, Table};
use super::{batch, median_f64};
use crate::BoxError;

/// Interleaved rounds (`--quick`: 2).
const ROUNDS: usize = 9;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Owner {
    user: String,
    team: String,
    uid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u64,
    name: String,
    state: String,
    priority: i32,
    progress: f64,
    retries: u8,
    tags: Vec<String>,
    owner: Owner,
    counters: BTreeMap<String, u64>,
    deadline_ms: Option<u64>,
    note: Option<String>,
}

fn job(i: u64) -> Job {
    Job {
        id: 1_000_000 + i,
        name: format!("render-frame-{i}"),
        state: ["queued", "running", "done"][i as usize % 3].into(),
        priority: (i % 7) as i32 - 3,
        progress: i as f64 / 7.0,
        retries: (i % 4) as u8,
        tags: vec!["gpu".into(), format!("shard-{}", i % 16), "nightly".into()],
        owner: Owner {
            user: format!("user{}", i % 50),
            team: "graphics".into(),
            uid: 1000 + (i % 50) as u32,
        },
        counters: [
            ("bytes_in", 4096 * i),
            ("bytes_out", 512 * i),
            ("frames", i),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        deadline_ms: i.is_multiple_of(2).then_some(1_764_000_000_000 + i),
        note: None,
    }
}

/// One path's ns per message, one entry per round.
#[derive(Default, Clone)]
struct Times(Vec<f64>);

pub(super) fn run(quick: bool) -> Result<Section, BoxError> {
    let jobs: Vec<Job> = (0..64).map(job).collect();
    let rounds = if quick { 2 } else { ROUNDS };
    let modes = [
        ("json", Serialization::Json),
        ("msgpack", Serialization::MsgPack),
    ];
    // [mode][encode value, encode typed, decode value, decode typed]
    let mut times = vec![vec![Times::default(); 4]; modes.len()];
    let mut sizes = vec![0; modes.len()];
    for (m, (name, mode)) in modes.iter().enumerate() {
        let (via_value, typed) = (encode_value(*mode, &jobs)?, encode_typed(*mode, &jobs)?);
        if via_value != typed {
            return Err(
                format!("typed: {name}: the typed bytes differ from the Value path's").into(),
            );
        }
        sizes[m] = typed.len() / jobs.len();
        if decode_typed(*mode, &typed)? != jobs || decode_value(*mode, &typed)? != jobs {
            return Err(format!("typed: {name}: a path decodes something else").into());
        }
    }
    for _ in 0..rounds {
        for (m, (_, mode)) in modes.iter().enumerate() {
            let wire = encode_typed(*mode, &jobs)?;
            let per = |ns: Duration| ns.as_nanos() as f64 / jobs.len() as f64;
            times[m][0]
                .0
                .push(per(batch(Duration::from_millis(50), 3, || {
                    encode_value(*mode, &jobs).map(drop)
                })?));
            times[m][1]
                .0
                .push(per(batch(Duration::from_millis(50), 3, || {
                    encode_typed(*mode, &jobs).map(drop)
                })?));
            times[m][2]
                .0
                .push(per(batch(Duration::from_millis(50), 3, || {
                    decode_value(*mode, &wire).map(drop)
                })?));
            times[m][3]
                .0
                .push(per(batch(Duration::from_millis(50), 3, || {
                    decode_typed(*mode, &wire).map(drop)
                })?));
        }
    }
    Ok(section(&modes.map(|(n, _)| n), &times, &sizes, rounds))
}

fn encode_value(mode: Serialization, jobs: &[Job]) -> Result<BytesMut, BoxError> {
    let mut codec = mode.codec()?;
    let mut out = BytesMut::new();
    for j in jobs {
        codec.encode(to_value(j)?, &mut out)?;
    }
    Ok(out)
}

fn encode_typed(mode: Serialization, jobs: &[Job]) -> Result<BytesMut, BoxError> {
    let mut codec = mode.codec()?;
    let mut out = BytesMut::new();
    for j in jobs {
        codec.encode_typed(j, &mut out)?;
    }
    Ok(out)
}

fn decode_value(mode: Serialization, wire: &BytesMut) -> Result<Vec<Job>, BoxError> {
    let mut codec = mode.codec()?;
    let mut src = wire.clone();
    let mut jobs = Vec::new();
    while let Some(v) = codec.decode(&mut src)? {
        jobs.push(from_value::<Job>(&v)?);
    }
    Ok(jobs)
}

fn decode_typed(mode: Serialization, wire: &BytesMut) -> Result<Vec<Job>, BoxError> {
    let mut codec = mode.codec()?;
    let mut src = wire.clone();
    let mut jobs = Vec::new();
    while let Some(j) = codec.decode_typed::<Job>(&mut src)? {
        jobs.push(j);
    }
    Ok(jobs)
}

fn section(modes: &[&str], times: &[Vec<Times>], sizes: &[usize], rounds: usize) -> Section {
    let mut rows = Vec::new();
    for (m, mode) in modes.iter().enumerate() {
        let [ev, et, dv, dt] = [0, 1, 2, 3].map(|i| median_f64(&times[m][i].0));
        rows.push(vec![
            (*mode).to_string(),
            format!("{} B", sizes[m]),
            format!("{ev:.0} ns"),
            format!("{et:.0} ns"),
            format!("{:.2}×", ev / et),
            format!("{dv:.0} ns"),
            format!("{dt:.0} ns"),
            format!("{:.2}×", dv / dt),
        ]);
    }
    let table = Table {
        header: [
            "serialization",
            "message",
            "encode: via Value",
            "typed",
            "speed-up",
            "decode: via Value",
            "typed",
            "speed-up",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    let body = format!(
        "## Typed messages: straight to the wire against through a `Value`\n\n\
         `cargo xtask bench typed`: a job record (11 fields: ids, names, three tags, a nested \
         owner, a map of three counters, options, a float) encoded as `Json(&job)` did before \
         (`to_value`, then the codec) against `TypedCodec::encode_typed`, and decoded through \
         a `Value` (`from_value`) against `decode_typed`; ns per message, medians of {rounds} \
         interleaved rounds of 64 messages. Both paths write the same bytes (checked first); \
         `ChildProcess::send(Json(&msg))` and `Sender::send_message` take the typed path.\n\n{}",
        table.render()
    );
    Section {
        name: "typed",
        body,
    }
}
