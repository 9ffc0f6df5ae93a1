"""How long each case of the bad-input corpus (``tests/e2e/test_bad_inputs.py``) takes to be refused.

Goal (issue 12): none takes over 5 s. Each case runs in-process through ``codesign.cli.main`` in a
fresh temporary folder (the first case of a kind also pays its imports); the table lists the
slowest cases and the CSV/JSON all of them.

    python bench/bad_inputs.py [--out bench/results/bad_inputs.json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _corpus():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bad_inputs_corpus", ROOT / "tests" / "e2e" / "test_bad_inputs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bad_inputs.json"))
    args = ap.parse_args()
    mod = _corpus()
    import codesign
    from codesign.cli.simulate import write_result

    rows = []
    with tempfile.TemporaryDirectory(prefix="codesign-bad-") as tmp:
        good_dir = Path(tmp) / "good"
        good_dir.mkdir()
        codesign.sweep({"workloads": ["ds_cnn_kws"], "axes": {"rows": [4, 8]}}, workers=1,
                       output=good_dir / "good.parquet")
        write_result(codesign.simulate("ds_cnn_kws"), good_dir / "good.json")
        good = {p.name: p.read_bytes() for p in good_dir.iterdir()}
        for name, case in sorted(mod.CASES.items()):
            d = Path(tempfile.mkdtemp(dir=tmp))
            err = io.StringIO()
            t0 = time.perf_counter()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status, _, _ = mod.run_case(case, d, good)
            seconds = time.perf_counter() - t0
            lines = err.getvalue().splitlines()
            rows.append({"case": name, "seconds": round(seconds, 3), "status": status, "lines": len(lines),
                         "message": lines[0] if lines else ""})
    rows.sort(key=lambda r: -r["seconds"])
    print(f"{'case':<48}{'s':>8}{'exit':>6}  message")
    for r in rows[:15]:
        print(f"{r['case']:<48}{r['seconds']:>8.3f}{r['status']:>6}  {r['message'][:90]}")
    summary = {"cases": len(rows), "max_seconds": rows[0]["seconds"], "over_5_s": sum(r["seconds"] > 5 for r in rows),
               "not_exit_2": sum(r["status"] != 2 for r in rows), "not_one_line": sum(r["lines"] != 1 for r in rows),
               "load_1min": round(os.getloadavg()[0], 2)}
    print(summary)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "cases": rows}, indent=2) + "\n")
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
