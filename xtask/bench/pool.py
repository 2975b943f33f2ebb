"""The Python row of `cargo xtask bench`'s pool section (xtask/src/bench/pool.rs).

usage: python3 pool.py tiny|cpu WORKERS TASKS CLIENTS FIB

A multiprocessing.Pool of WORKERS processes answering TASKS tasks, one apply_async per task,
from a closed loop of CLIENTS clients (each sends its next task when the last is answered).
Tasks: {"echo": v} -> v; {"fib": n} -> a naive fib(n). Timed here, after a warm-up, so
startup is not counted. Prints {"tasks":..,"elapsed_ns":..,"p50_ns":..,"p99_ns":..}.
"""

import json
import multiprocessing
import sys
import threading
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def handle(task):
    if "echo" in task:
        return task["echo"]
    return fib(task["fib"])


def main():
    kind, workers, tasks, clients, fib_n = sys.argv[1:6]
    workers, tasks, clients, fib_n = int(workers), int(tasks), int(clients), int(fib_n)
    expect = None if kind == "tiny" else fib(fib_n)

    def task_of(i):
        return {"echo": {"i": i, "s": "hello"}} if kind == "tiny" else {"fib": fib_n}

    with multiprocessing.Pool(workers) as pool:
        pool.map(handle, [task_of(i) for i in range(clients * 5)], chunksize=1)
        latencies = []
        errors = []
        lock = threading.Lock()
        done = threading.Event()
        state = {"left": tasks, "out": 0}

        def submit():
            # Called with `lock` held.
            if state["left"] == 0:
                return
            state["left"] -= 1
            state["out"] += 1
            sent = time.perf_counter_ns()
            pool.apply_async(
                handle,
                (task_of(state["left"]),),
                callback=lambda answer, sent=sent: finish(answer, sent),
                error_callback=fail,
            )

        def finish(answer, sent):
            latencies.append(time.perf_counter_ns() - sent)
            wrong = answer.get("s") != "hello" if expect is None else answer != expect
            with lock:
                if wrong:
                    errors.append(f"a wrong answer: {answer!r}")
                state["out"] -= 1
                submit()
                if state["out"] == 0:
                    done.set()

        def fail(error):
            errors.append(repr(error))
            done.set()

        start = time.perf_counter_ns()
        with lock:
            for _ in range(clients):
                submit()
        done.wait()
        elapsed = time.perf_counter_ns() - start
    if errors:
        sys.exit(errors[0])
    latencies.sort()

    def at(q):
        return latencies[round((len(latencies) - 1) * q)]

    print(json.dumps({
        "tasks": len(latencies), "elapsed_ns": elapsed, "p50_ns": at(0.5), "p99_ns": at(0.99),
    }))


if __name__ == "__main__":
    main()
