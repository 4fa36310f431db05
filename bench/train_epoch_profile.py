# train_epoch_profile: the table of bench/train-epoch-profile from oneDNN's verbose log of one
# nas-train epoch: oneDNN's primitives grouped by kind, implementation, direction and shape, with
# calls, milliseconds, GFLOP/s (convolutions) and their share of the epoch; then the rest.
#
#   python3 train_epoch_profile.py VERBOSE_LOG EPOCH_S VAL_S [PERF_DSOS]
import re, sys
from collections import defaultdict

log, epoch_s, val_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
dsos = sys.argv[4] if len(sys.argv) > 4 else ""

# oneDNN 2.x: onednn_verbose,exec,cpu,PRIMITIVE,IMPLEMENTATION,PROP_KIND,MEMORY,ATTR,AUX,PROBLEM,MS
calls = []
for line in open(log):
    f = line.rstrip("\n").split(",")
    if len(f) >= 11 and f[0] in ("onednn_verbose", "dnnl_verbose") and f[1] == "exec":
        calls.append((f[3], f[4], f[5], f[-2], float(f[-1])))

def epoch_calls(calls):
    """The calls of the epoch: the training steps, then the epoch's validation pass, whose last
    batch is the first one after the last backward call with another batch size than the training
    steps' (6,000 samples in batches of 128 end with 112); the final validation and test passes after it are left out."""
    last_bwd = max((i for i, c in enumerate(calls) if c[2].startswith("backward")), default=-1)
    mb = lambda c: (re.match(r"mb(\d+)", c[3]) or [None, None])[1]
    bwd_mbs = [mb(c) for c in calls[:last_bwd + 1] if c[2].startswith("backward")]
    train_mb = max(set(bwd_mbs), key=bwd_mbs.count) if bwd_mbs else None  # the batch size
    end, seen_partial = len(calls), False
    for i in range(last_bwd + 1, len(calls)):
        partial = mb(calls[i]) not in (None, train_mb)
        if seen_partial and not partial:
            end = i
            break
        seen_partial = seen_partial or partial
    return calls[:end], end < len(calls)

calls, cut = epoch_calls(calls)
groups = defaultdict(lambda: [0, 0.0])
for prim, impl, prop, problem, ms in calls:
    groups[(prim, impl, prop, problem)][0] += 1
    groups[(prim, impl, prop, problem)][1] += ms

def conv_flop(problem):
    """2 x MACs of one convolution call from its problem string (mb, g, ic, oc, oh, ow, kh, kw)."""
    v = {k: int(n) for k, n in re.findall(r"(mb|g|ic|oc|oh|ow|kh|kw)(\d+)", problem)}
    if not all(k in v for k in ("mb", "ic", "oc", "oh", "ow", "kh", "kw")):
        return None
    return 2 * v["mb"] * v["ic"] * v["oc"] * v["oh"] * v["ow"] * v["kh"] * v["kw"] / v.get("g", 1)

print("| primitive | implementation | direction | shape | calls | ms | GFLOP/s | share of the epoch |")
print("|---|---|---|---|---:|---:|---:|---:|")
total_ms = 0.0
shown = sorted(groups.items(), key=lambda kv: -kv[1][1])
for (prim, impl, prop, problem), (n, ms) in shown:
    total_ms += ms
    if ms < 0.005 * epoch_s * 1000:
        continue
    flop = conv_flop(problem) if prim == "convolution" else None
    rate = f"{flop * n / (ms / 1000) / 1e9:.1f}" if flop else ""
    print(f"| {prim} | {impl} | {prop} | {problem} | {n} | {ms:.0f} | {rate} | {100 * ms / 1000 / epoch_s:.1f}% |")
print()
print(f"The epoch (v_epochs.wall_s, its validation pass of {val_s:.2f} s included): {epoch_s:.2f} s.")
print(f"All oneDNN primitives (rows under 0.5% of the epoch left out of the table, counted here):"
      f" {total_ms / 1000:.2f} s, {100 * total_ms / 1000 / epoch_s:.1f}% of the epoch"
      + (" (the final validation and test passes after it left out)." if cut else
         " (the final validation and test passes could not be told apart and are included)."))
print(f"Outside oneDNN: {epoch_s - total_ms / 1000:.2f} s (batch norm and activations, the optimizer,"
      " loss, pooling and the linear layer, batch gather, the study file).")
if dsos:
    print("\nThe whole run by library (`perf report --sort dso` of a second run; [JIT] is oneDNN's"
          " generated kernels, nas-train includes its batch-norm/activation kernels; the run's"
          " loading of the data is in libz):\n\n```")
    print(open(dsos).read().rstrip())
    print("```")
