"""How many of seeds 0–3 pass each claim of an experiment's quick preset (issue 14: power across seeds).

Runs ``genlab``'s quick preset of each named experiment at every seed (in this process, one after
the other: ``OMP_NUM_THREADS=1``), keeps each result as JSON under ``--cache`` (so the verdicts can
be recomputed from the stored results with ``--from-cache`` after a change of ``checks``), and
prints JSON: per experiment and claim, the seeds at which it passed, failed or was not tested
(a failed precondition of that run), and how often each precondition was met. ``--markdown``
prints the README table instead.

    OMP_NUM_THREADS=1 python benchmarks/seed_pass_table.py grokking heavy-tail --seeds 0:4 --markdown
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from genlab.config import build_config
from genlab.experiments import get_experiment
from genlab.recorder import MemoryRecorder
from genlab.store import claim_outcome

# the experiments whose checks issue 14 reworked
DEFAULT = [
    "grokking", "heavy-tail", "stable-minima", "edge-of-stability", "hessian-outliers", "forgetting",
    "min-norm-spline", "coherence", "max-margin", "stable-minima-rate", "gfs-sharpness", "data-diet",
    "ultra-slow-diffusion", "aciq",
]


def _seeds(text: str) -> list[int]:
    m = re.fullmatch(r"(\d+):(\d+)", text)
    if not m or int(m.group(2)) <= int(m.group(1)):
        raise SystemExit(f"--seeds: expected START:STOP with STOP > START (e.g. 0:4), got {text!r}")
    return list(range(int(m.group(1)), int(m.group(2))))


def _short(claim: str) -> str:
    return claim if len(claim) <= 90 else claim[:87] + "..."


def table(names: list[str], seeds: list[int], cache: Path, from_cache: bool) -> dict:
    cache.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    for name in names:
        exp = get_experiment(name)
        rows: dict[str, dict] = {}
        cpu: list[float] = []
        for seed in seeds:
            cfg = build_config(exp.Config, "quick", {"seed": seed})
            path = cache / f"{name}-seed{seed}.json"
            if from_cache or path.exists():
                if not path.exists():
                    raise SystemExit(f"--from-cache: {path} missing")
                result = json.loads(path.read_text())
            else:
                t0 = time.process_time()
                result = exp.run(cfg, MemoryRecorder())
                cpu.append(time.process_time() - t0)
                path.write_text(json.dumps(result, default=float))
                result = json.loads(path.read_text())
            verdicts = exp.checks(cfg, result)
            for v in verdicts:
                if v.kind == "finding":
                    continue
                key = f"[{v.kind}] {v.claim}"
                row = rows.setdefault(key, {"kind": v.kind, "claim": v.claim, "pass": [], "fail": [], "not tested": []})
                outcome = claim_outcome(v, verdicts)
                row[{"pass": "pass", "met": "pass", "FAIL": "fail", "NOT MET": "fail"}.get(outcome, "not tested")].append(seed)
        out[name] = {"seeds": seeds, "rows": list(rows.values()), "cpu_seconds": cpu}
        print(f"{name}: done", file=sys.stderr, flush=True)
    return out


def markdown(data: dict) -> str:
    lines = ["| experiment | verdict | kind | seeds passing (of %d) | failing seeds |" % len(next(iter(data.values()))["seeds"]),
             "|---|---|---|---|---|"]
    for name, d in data.items():
        n = len(d["seeds"])
        for r in d["rows"]:
            k = len(r["pass"])
            fragile = " (fragile)" if r["kind"] == "claim" and 0 < k < n - 1 else ""
            nt = f"; not tested at {r['not tested']}" if r["not tested"] else ""
            lines.append(f"| {name} | {_short(r['claim'])} | {r['kind']} | {k}/{n}{fragile} | {r['fail'] or '-'}{nt} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="experiments (default: the 14 of issue 14)")
    ap.add_argument("--seeds", default="0:4", help="START:STOP (default 0:4)")
    ap.add_argument("--cache", default="seed-pass-cache", help="folder of the stored results (default ./seed-pass-cache)")
    ap.add_argument("--from-cache", action="store_true", help="only recompute verdicts from stored results")
    ap.add_argument("--markdown", action="store_true", help="print the README table instead of JSON")
    args = ap.parse_args()
    data = table(args.names or DEFAULT, _seeds(args.seeds), Path(args.cache), args.from_cache)
    print(markdown(data) if args.markdown else json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
