#!/usr/bin/env python3
"""report: bench/local-meter/run's markdown from local_meter's JSON lines.

usage: report.py ROOT COMMAND (POLICY LINES.jsonl LOAD_BEFORE LOAD_AFTER)...
POLICY is the scheduling policy the lines were measured under (normal | fifo); LOAD_* hold the
output of uptime before and after. MAX_LOAD in the environment [0.5]: the load called idle.
"""
import datetime
import json
import os
import platform
import statistics
import sys

POLICIES = {
    "normal": "normal scheduling (as a user runs it)",
    "fifo": "SCHED_FIFO priority 10 (`chrt --fifo 10`): the pinned CPU left to the meter",
}


def load1(uptime):
    """The 1-minute load average of an uptime line."""
    return float(uptime.split("load average:")[1].split(",")[0])


def header(first, command):
    t = first["threads"]
    print("# Local meter: latency stability\n")
    print("Measured %s on %s, Linux %s, %d CPUs visible; LibTorch %s; device %s; %d intra-op thread(s) "
          "pinned to CPU(s) %s; fp32, channels-last, inference mode, untrained weights (seed 1).\n"
          % (datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), first["device_name"], platform.release(),
             os.cpu_count(), first["torch"], first["device"], t["torch_intra_op"],
             ",".join(str(c) for c in t["cpus"])))
    print("Each repeat: %d warm-up then %d timed forwards at batch 1, the same at batch %d, then the energy "
          "window; all repeats of a network in one process, on one network object. Acceptance (issue 14): "
          "p90/median below 1.2 on an idle machine.\n" % (first["warmup"], first["runs"], first["batch"]["size"]))
    print("Reproduce: `cmake --build build --target local_meter && %s`\n" % command)


def load_note(before, after, threads):
    """The load around a section; the meter's own pinned threads add up to `threads` to it."""
    print("The machine is shared with other agents' builds and tests (2 CPUs): load before: `%s`, after: `%s`.\n"
          % (before, after))
    max_load = float(os.environ.get("MAX_LOAD", "0.5")) + threads
    if load1(before) >= max_load or load1(after) >= max_load:
        print("**Not an idle machine**: the 1-minute load was at or above %g (MAX_LOAD plus the meter's own %d "
              "thread(s)) during these runs, so the numbers include interference from other processes.\n"
              % (max_load, threads))


def series(b1):
    """The p90/median of every series the meter took at batch 1, the kept one in bold."""
    ratios = b1.get("attempts", [])
    return ", ".join(("**%.3f**" if i == b1.get("kept_attempt") else "%.3f") % r for i, r in enumerate(ratios)) or "-"


def tables(by_file, root, batch):
    print("| network | repeat | median ms | p10 ms | p90 ms | p90/median | series taken (p90/median, kept in bold) "
          "| max ms | batch %d ms | images/s | rss growth | analytic bytes |" % batch)
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    summary = []
    for f, ls in by_file.items():
        name = os.path.relpath(f, root)
        meds, ratios = [], []
        for l in ls:
            m = l["metrics"]
            ratio = m["latency_p90_ms"] / m["latency_ms"]
            meds.append(m["latency_ms"])
            ratios.append(ratio)
            rss = m.get("rss_growth_bytes")
            print("| %s | %d | %.4f | %.4f | %.4f | %.3f | %s | %.2f | %.3f | %.0f | %s | %d |"
                  % (name, l["repeat"], m["latency_ms"], m["latency_p10_ms"], m["latency_p90_ms"], ratio,
                     series(l["raw"]["batch1"]), l["raw"]["batch1"]["max_ms"], m["latency_batch_ms"], m["throughput_ips"],
                     "-" if rss is None else "%d" % rss, m["peak_mem_bytes"]))
        spread = (max(meds) - min(meds)) / statistics.median(meds)
        summary.append((name, statistics.median(meds), max(ratios), spread))
    print("\n| network | median of medians (ms) | worst p90/median | spread of the median (max-min)/median "
          "| p90/median < 1.2 in every repeat |")
    print("|---|---:|---:|---:|---|")
    for name, med, worst, spread in summary:
        print("| %s | %.4f | %.3f | %.1f%% | %s |" % (name, med, worst, 100 * spread, "yes" if worst < 1.2 else "NO"))
    print()


def batch_note(by_file, root):
    """Says so when batch 1 costs much more per image than the batch (LibTorch's path choice)."""
    notes = []
    for f, ls in by_file.items():
        one = statistics.median(l["metrics"]["latency_ms"] for l in ls)
        size = ls[0]["raw"]["batch"]["size"]
        per = statistics.median(l["metrics"]["latency_batch_ms"] for l in ls) / size
        if size > 1 and one > 2 * per:
            notes.append("%s: %.3f ms at batch 1, %.3f ms per image at batch %d (%.1fx)"
                         % (os.path.relpath(f, root), one, per, size, one / per))
    if notes:
        print("Batch 1 costs more per image than the batch: " + "; ".join(notes) + ". LibTorch's CPU "
              "convolution (1.13 here; later versions keep the rule) takes its native im2col + GEMM path "
              "instead of oneDNN for a batch of 1 with no groups, a kernel not larger than 3 on both sides "
              "and an input of at most 20,480 elements (aten/src/ATen/native/Convolution.cpp, use_mkldnn: "
              "\"for some case, native is faster\"); single-threaded here it is up to 10x slower than oneDNN. "
              "The meter reports what the runtime does.\n")


def section(policy, lines, before, after, root):
    sched, _, attempts = policy.partition("-a")
    a = int(attempts or 1)
    print("## %s; %s\n" % (POLICIES.get(sched, sched),
                           "one series of timed runs (attempts = 1)" if a == 1 else
                           "up to %d series until one has p90/median at most %g (attempts = %d)"
                           % (a, lines[0]["raw"]["batch1"].get("steady_ratio", 1.2), a)))
    load_note(before, after, lines[0]["raw"]["threads"]["torch_intra_op"])
    by_file = {}
    for l in lines:
        by_file.setdefault(l["genome_file"], []).append(l)
    tables(by_file, root, lines[0]["raw"]["batch"]["size"])
    batch_note(by_file, root)
    energy = lines[0]["raw"]["energy"]
    print("Energy: %s.\n" % (("%s, %s" % (energy["meter"], energy.get("why_not", "measured")))
                             if "meter" in energy else "unknown -- " + energy["why_not"]))


def main(root, command, *sections):
    if not sections or len(sections) % 4:
        sys.exit(__doc__)
    parts = []
    for i in range(0, len(sections), 4):
        policy, path, before, after = sections[i:i + 4]
        lines = [json.loads(l) for l in open(path) if l.strip()]
        if not lines:
            sys.exit("report.py: no measurements in " + path)
        parts.append((policy, lines, open(before).read().strip(), open(after).read().strip()))
    header(parts[0][1][0]["raw"], command)
    for policy, lines, before, after in parts:
        section(policy, lines, before, after, root)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
