# report: the markdown of bench/fmnist-nsga2/run -- both fronts at the last rung, their sizes and
# hypervolumes side by side, and the two checks
import re, sqlite3, sys

work, budget, base_epochs, reference, nsga2_s, base_s, settings = sys.argv[1:8]
studies = [("nsga2", "nsga2 over (val_acc, weight_bytes), bred by the workers"),
           ("baseline", "random + proxies + promotion by val_acc alone, within the same epochs")]

def summary(name):
    text = open(f"{work}/{name}.summary").read()
    m = re.search(r"front: (\d+) of (\d+) trials; hypervolume ([^ ]+) ", text)
    if not m:
        sys.exit(f"report: no summary in nas-pareto's output for {name}: {text!r}")
    return int(m.group(1)), int(m.group(2)), float(m.group(3))

def last_rung(name):
    db = sqlite3.connect(f"{work}/{name}.db")
    rung, n = db.execute("SELECT rung, count(DISTINCT trial_id) FROM result WHERE metric = 'val_acc'"
                         " GROUP BY rung ORDER BY rung DESC LIMIT 1").fetchone()
    epochs = db.execute("SELECT max(value) FROM result WHERE metric = 'epochs' AND rung = ?", (rung,)).fetchone()[0]
    trials = db.execute("SELECT count(*) FROM trial").fetchone()[0]
    trained = db.execute("SELECT count(DISTINCT trial_id) FROM result").fetchone()[0]
    return rung, n, epochs, trials, trained

rows = {name: (summary(name), last_rung(name)) for name, _ in studies}
full = settings.startswith("cands=64 pop=16 init=8 subset=0 ")
print("# fmnist-nsga2: nsga2 against random sampling + proxies + accuracy-only promotion\n")
print("Issue 16's acceptance on Fashion-MNIST: examples/fashion-mnist/nsga2.toml (nsga2 over val_acc and")
print("weight_bytes, children bred by the workers, successive halving by non-dominated rank and crowding)")
print("against examples/fashion-mnist/study.toml without its [search] objectives (random sampling, the")
print("proxies keep half, successive halving by val_acc alone), held by [search] epochs to the epochs the")
print("nsga2 search trained; the same seed. Fronts at each study's last rung (5 epochs), hypervolumes")
print("against one reference point. Reproduce: `bench/fmnist-nsga2/run` (environment: see its header).\n")
if not full:
    print("**Reduced run** (fewer candidates or a data subset): it shows the script works; it is not the")
    print("acceptance, which needs the example's full size (CANDIDATES=64 POP=16 INIT=8 SUBSET=0).\n")
print(f"Settings: {settings}; hypervolume reference (val_acc, weight_bytes) = ({reference}).")
print(f"Epochs trained: nsga2 {float(budget):g}, baseline {float(base_epochs):g} (its [search] epochs = {float(budget):g}).")
print(f"Wall time: nsga2 {nsga2_s} s, baseline {base_s} s.\n")
print("| search | trials (trained) | last rung (epochs) | trials at it | front at it | hypervolume |")
print("|---|---|---|---|---|---|")
for name, what in studies:
    (front, of, hv), (rung, n, epochs, trials, trained) = rows[name]
    print(f"| {name}: {what} | {trials} ({trained}) | {rung} ({epochs:g}) | {n} | {front} of {of} | {hv:.6g} |")
for name, _ in studies:
    print(f"\n{name}'s front at its last rung (nas-pareto -o val_acc:max -o weight_bytes:min):\n\n```")
    print(open(f"{work}/{name}.front").read().rstrip())
    print("```")
(nf, _, nhv), _ = rows["nsga2"]
(_, _, bhv), _ = rows["baseline"]
print(f"\nfront of at least 5 trials at the last rung: {'yes' if nf >= 5 else 'no'} ({nf})")
print(f"nsga2's hypervolume beats the baseline's: {'yes' if nhv > bhv else 'no'} ({nhv:.6g} vs {bhv:.6g})")
