//! The harness's own tests: scripts written by hand reach the paths the target is for, in
//! every serialization, and pass its checks.

use super::input::{Cmd, End, FdCount, Frame, HandleType, Mode, Msg, Op, Script};
use super::Reached;

/// One at a time: the checks count the fds of the whole process.
fn run(script: Script) -> Reached {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    super::run(script)
}

const MODES: [Mode; 4] = [Mode::Json, Mode::Advanced, Mode::LengthJson, Mode::MsgPack];

fn handle(msg: i32, wraps: u8) -> Op {
    Op::Push(Frame::Handle {
        ty: HandleType::Socket,
        msg: Msg::Int(msg),
        wraps,
        extra: None,
    })
}

fn write_all(fds: FdCount, kind: u8) -> Op {
    Op::WriteAll { fds, kind }
}

#[test]
fn handle_frames_with_and_without_fds_are_acked_and_nacked() {
    for mode in MODES {
        for end in [
            End::PeerEof,
            End::PeerClose,
            End::PeerCloseUnread,
            End::Disconnect,
        ] {
            let reached = run(Script {
                mode,
                ops: vec![
                    handle(1, 0),
                    write_all(FdCount::One, 1), // a Unix stream socket
                    Op::Drive,
                    handle(2, 1), // wrapped again, as Node's resend
                    Op::Push(Frame::User(Msg::Str("plain".into()))),
                    write_all(FdCount::None, 0),
                    Op::Drive,
                    Op::Push(Frame::Internal(Cmd::GetCount)),
                    handle(3, 0),
                    write_all(FdCount::One, 4), // any kind
                    Op::Drive,
                ],
                end,
            });
            assert_eq!(reached.handles, 2, "{mode:?} {end:?}: {reached:?}");
            assert_eq!(reached.messages, 3, "{mode:?} {end:?}: {reached:?}");
            if matches!(end, End::PeerEof | End::Disconnect) {
                assert_eq!(reached.answers, (2, 1), "{mode:?} {end:?}");
            }
        }
    }
}

#[test]
fn more_fds_than_a_read_holds_are_truncated_and_closed() {
    for (count, kind) in [(FdCount::Overflow(3), 0), (FdCount::Max, 2)] {
        let reached = run(Script {
            mode: Mode::Json,
            ops: vec![
                Op::Push(Frame::User(Msg::Null)),
                write_all(count, kind),
                Op::Drive,
                handle(1, 0),
                write_all(FdCount::None, 0),
                Op::Drive,
            ],
            end: End::PeerEof,
        });
        assert_eq!(reached.truncated_reads, 1, "{reached:?}");
        assert_eq!(reached.answers, (0, 1), "nothing queued: NACK");
    }
}

#[test]
fn fds_past_the_queue_limit_are_closed() {
    // Five reads of 16 fds each, with plain messages: 80 fds for a queue of 64.
    let mut ops = Vec::new();
    for _ in 0..5 {
        ops.push(Op::Push(Frame::User(Msg::Int(0))));
        ops.push(write_all(FdCount::Few(14), 0));
    }
    ops.push(Op::Drive);
    ops.push(handle(9, 0));
    ops.push(write_all(FdCount::None, 0));
    ops.push(Op::Drive);
    let reached = run(Script {
        mode: Mode::MsgPack,
        ops,
        end: End::PeerEof,
    });
    assert_eq!(reached.max_queued, childproc_ipc::__fuzz::MAX_QUEUED_FDS);
    assert_eq!(reached.handles, 1, "the oldest queued fd goes with it");
}

#[test]
fn our_handles_wait_for_the_peers_answer() {
    for mode in MODES {
        let reached = run(Script {
            mode,
            ops: vec![
                Op::SendHandle {
                    kind: 1,
                    msg: Msg::Int(1),
                },
                Op::SendNowait(Msg::Str("held".into())),
                Op::SendHandle {
                    kind: 4,
                    msg: Msg::Int(2),
                },
                Op::Drive,
                Op::Push(Frame::Ack),
                write_all(FdCount::None, 0),
                Op::Drive,
                Op::Push(Frame::Nack),
                write_all(FdCount::None, 0),
                Op::Send(Msg::Bool(true)),
                Op::Drive,
            ],
            end: End::PeerEof,
        });
        assert_eq!(reached.handles_sent, 2, "{mode:?}");
    }
}

#[test]
fn fds_split_across_frames_and_garbage_end_the_stream() {
    let reached = run(Script {
        mode: Mode::Advanced,
        ops: vec![
            Op::Push(Frame::Split {
                cut: 5,
                msg: Msg::Str("split".into()),
            }),
            Op::Drive,
            write_all(FdCount::Few(0), 3),
            Op::Drive,
            Op::Push(Frame::Raw(vec![0, 0, 0, 2, 0xff, 0xff])),
            write_all(FdCount::One, 0),
            Op::Drive,
        ],
        end: End::PeerEof,
    });
    assert_eq!(reached.handles, 1, "{reached:?}");
}
