"""Train digits_cnn (numpy, seed 0) and write the weights the package ships.

    python bench/train_digits_cnn.py                 # rewrites workloads/data/digits_cnn.npz
    python bench/train_digits_cnn.py --check         # trains and compares with the shipped file

The run is deterministic: the same numpy and BLAS give the same bytes (the file's zip entries
carry fixed timestamps). Prints the float accuracy on the training and test splits.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from codesign.workloads import digits

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "workloads" / "data" / digits.WEIGHTS_FILE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="weights file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="do not write; compare with the shipped weights")
    args = ap.parse_args()
    t0 = time.perf_counter()
    params = digits.train(seed=args.seed)
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.npz" if args.check else args.out
        path.parent.mkdir(parents=True, exist_ok=True)
        digits.save(params, path)
        tn = digits.load_trained(path)
        data = digits.load_dataset()
        acc = {split: float(np.mean(tn.forward(digits.prepare(x)).argmax(axis=1) == y))  # type: ignore[union-attr]
               for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test))}
        print(f"trained in {seconds:.1f} s: float accuracy train {acc['train']:.4f}, test {acc['test']:.4f}")
        if args.check:
            same = path.read_bytes() == OUT.read_bytes()
            print(f"{'identical to' if same else 'DIFFERS from'} {OUT.relative_to(ROOT)}")
            return 0 if same else 1
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
