#!/usr/bin/env python3
"""Writes PyTorch parity cases with fresh random inputs for the C++ tests to read.

Each family module in this folder (gen_*.py) has `generate(rng) -> list of (file, cases)`; a case is
(name, {key: numpy array or float}). Arrays are written in the layout the family's test documents.
"""
import argparse
import importlib
import os
import pathlib
import sys

import numpy as np
import torch


def write_cases(path, cases):
    with open(path, "w") as f:
        for name, values in cases:
            f.write(f"case {name}\n")
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    f.write(f"scalar {key} {float(value)!r}\n")
                    continue
                arr = np.asarray(value, dtype=np.float64)
                f.write(f"array {key} {arr.ndim} {' '.join(str(d) for d in arr.shape)}\n")
                f.write(" ".join(repr(float(v)) for v in arr.reshape(-1)))
                f.write("\n")
            f.write("end\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=None, help="default: fresh random inputs every run")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"PyTorch {torch.__version__}, seed {seed}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    here = pathlib.Path(__file__).parent
    sys.path.insert(0, str(here))
    count = 0
    for module_path in sorted(here.glob("gen_*.py")):
        module = importlib.import_module(module_path.stem)
        for file, cases in module.generate(rng):
            write_cases(os.path.join(args.out, file), cases)
            count += len(cases)
    print(f"wrote {count} cases to {args.out}")


if __name__ == "__main__":
    main()
