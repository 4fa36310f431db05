# report: the markdown tables of bench/search-strategies/run from its per-search files
import math, statistics, sys

work, seeds, evals, slots = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = sys.argv[5:]
OPT = 94.37333333333333          # the table's best CIFAR-10 test accuracy
MAX_PARAMS = 1531546             # the largest nb201 cell network (C=16, N=5, all 3x3 convs)
REF_ACC = 80.0                   # the hypervolume counts the trade-off above 80 % only
marks = [m for m in (25, 50, 100, 150, 200, 300, 500, 1000) if m <= evals]

def load(name, seed):
    with open(f"{work}/{name}.{seed}") as f:
        return [(100 * float(a), int(p)) for a, p in (line.split() for line in f if line.strip())]

def best_at(rows, k):
    return max(a for a, _ in rows[:k])

def hypervolume(rows, k):
    # (accuracy max, params min) against the reference (REF_ACC, MAX_PARAMS), params in millions
    pts = sorted(((a, p) for a, p in rows[:k]), key=lambda x: (x[1], -x[0]))
    hv, best = 0.0, REF_ACC
    for i, (a, p) in enumerate(pts):
        if a <= best:
            continue
        hv += (a - best) * (MAX_PARAMS - p) / 1e6
        best = a
    return hv

def fmt(xs):
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"

runs = {n: [load(n, s) for s in range(1, seeds + 1)] for n in names}
print(f"Best CIFAR-10 test accuracy (%) found after k evaluations, mean ± standard deviation over {seeds} seeds:\n")
print("| strategy | " + " | ".join(f"k = {m}" for m in marks) + f" | regret at {evals} | optimum found at {evals} |")
print("|---|" + "---|" * (len(marks) + 2))
regret = {}
# A search found the optimum when its best equals the table's best (the study file keeps the
# accuracy as a fraction: compare within rounding); a mean regret above 0 means some did not.
optimum = {n: sum(abs(best_at(r, evals) - OPT) < 1e-6 for r in runs[n]) for n in names}
for n in names:
    cells = [fmt([best_at(r, m) for r in runs[n]]) for m in marks]
    regret[n] = statistics.mean(OPT - best_at(r, evals) for r in runs[n])
    print(f"| {n} | " + " | ".join(cells) + f" | {regret[n]:.3f} | {optimum[n]}/{seeds} |")
hit = {n: sum(best_at(r, evals) >= 94.2 for r in runs[n]) for n in names}
print(f"\nSearches reaching 94.2 within {evals}: " + ", ".join(f"{n} {hit[n]}/{seeds}" for n in names))
if "random" in regret:
    print(f"Regret at {evals} relative to random search: " +
          ", ".join(f"{n} {regret[n] / regret['random']:.2f}" for n in names if n != "random"))
print(f"\nHypervolume of (accuracy %, params) against the reference ({REF_ACC:g} %, {MAX_PARAMS:,} params), params in millions, mean ± sd:\n")
print("| strategy | " + " | ".join(f"k = {m}" for m in marks) + " |")
print("|---|" + "---|" * len(marks))
for n in names:
    print(f"| {n} | " + " | ".join(fmt([hypervolume(r, m) for r in runs[n]]) for m in marks) + " |")
