#!/usr/bin/env python3
"""optuna_queue: ask/tell cycles per second of Optuna's SQLite storage, N processes on one file.

    optuna_queue.py --db PATH --procs N --trials T

The counterpart of queue_bench (same shape, same output) for Optuna as Debian packages it
(python3-optuna 3.1): creates a fresh study in PATH with Optuna's SQLite (RDB) storage, forks N
processes that each load it with optuna.create_study(..., load_if_exists=True), releases them at
once, and times them until the study has T trials. Each process loops study.ask() /
study.tell(trial, objective(trial)) with a trivial objective. Which process runs which of the T
trials is decided by a shared counter outside the storage, so that the study ends with exactly T
trials and the storage does nothing a real study would not. Every exception a call raises is
counted as a failed call: a failed ask() is tried again (no work is lost), a failed tell() leaves
its trial RUNNING, as it would in a real study, since Optuna has no lease that expires. Prints
one JSON line:

    {"tool":"optuna","procs":N,"trials":T,"completed":C,"failed_calls":E,"stuck":S,
     "seconds":W,"per_s":C/W}

where completed (COMPLETE trials) and stuck (RUNNING trials) are read from the storage at the end.
"""
import argparse
import json
import multiprocessing as mp
import os
import queue
import sqlite3
import sys
import time
import traceback

STUDY = "bench"


def objective(trial):
    return 0.0


def worker(url, total, barrier, tickets, results):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    completed = errors = 0
    study = None
    try:
        study = optuna.create_study(storage=url, study_name=STUDY, load_if_exists=True)
    except Exception as e:  # noqa: BLE001 -- counted, as every failure
        errors += 1
        print(f"optuna_queue: worker {os.getpid()}: load: {e}", file=sys.stderr)
    try:
        barrier.wait()
        while study is not None:
            with tickets.get_lock():
                if tickets.value >= total:
                    break
                tickets.value += 1
            trial = None
            for _ in range(100):
                try:
                    trial = study.ask()
                    break
                except Exception as e:  # noqa: BLE001
                    errors += 1
                    print(f"optuna_queue: worker {os.getpid()}: ask: {e}", file=sys.stderr)
            if trial is None:
                break
            try:
                study.tell(trial, objective(trial))
                completed += 1
            except Exception as e:  # noqa: BLE001
                errors += 1
                print(f"optuna_queue: worker {os.getpid()}: tell: {e}", file=sys.stderr)
    except Exception:  # noqa: BLE001 -- anything else still reports what was done
        errors += 1
        traceback.print_exc()
    finally:
        results.put((completed, errors))


def journal_mode(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="study file to create (replaced if it exists)")
    ap.add_argument("--procs", type=int, default=16, help="worker processes [16]")
    ap.add_argument("--trials", type=int, default=800, help="trials in all [800]")
    args = ap.parse_args()

    import optuna  # imported once here, inherited by the forked workers

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(args.db + suffix)
        except FileNotFoundError:
            pass
    url = "sqlite:///" + os.path.abspath(args.db)
    storage = optuna.storages.RDBStorage(url)
    optuna.create_study(storage=storage, study_name=STUDY)
    storage.engine.dispose()  # no connection may cross the fork
    del storage

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(args.procs + 1)
    tickets = ctx.Value("l", 0)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, args.trials, barrier, tickets, results))
             for _ in range(args.procs)]
    for p in procs:
        p.start()
    barrier.wait()  # every worker has loaded the study
    t0 = time.monotonic()
    for p in procs:
        p.join()
    seconds = time.monotonic() - t0
    reported = []
    for _ in procs:  # a worker that crashed reports nothing
        try:
            reported.append(results.get(timeout=5))
        except queue.Empty:
            break
    crashed = sum(1 for p in procs if p.exitcode != 0)

    study = optuna.load_study(storage=url, study_name=STUDY)
    trials = study.get_trials(deepcopy=False)
    completed = sum(1 for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    stuck = sum(1 for t in trials if t.state == optuna.trial.TrialState.RUNNING)
    errors = sum(e for _, e in reported) + crashed
    print(json.dumps({
        "tool": "optuna",
        "procs": args.procs,
        "trials": args.trials,
        "completed": completed,
        "failed_calls": errors,
        "stuck": stuck,
        "seconds": round(seconds, 3),
        "per_s": round(completed / seconds, 1),
        "journal": journal_mode(args.db),
    }, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
