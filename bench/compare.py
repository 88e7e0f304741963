#!/usr/bin/env python3
"""Runs an mpsnn benchmark binary and PyTorch on the same work, side by side, and prints ratios.

    bench/compare.py --bench build/release/bench/bench_convolution --device cpu [--filter REGEX]

Each benchmark is named <family>/<shape>/<batch>; bench/torch_<family>.py provides
`make(shape_row, batch, device) -> callable` doing the same work in PyTorch. Ratio = PyTorch time /
mpsnn time (above 1: mpsnn is faster). TF32 is off on both sides unless --tf32 is given.
"""
import argparse
import importlib
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def read_shapes(family):
    rows = {}
    with open(HERE / "shapes" / f"{family}.txt") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                parts = line.split()
                rows[parts[0]] = parts
    return rows


def time_torch(fn, device, min_time=0.2, repeats_per_sync=20):
    import torch
    if device == "cuda":
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        start_all = time.perf_counter()
        while time.perf_counter() - start_all < min_time or len(times) < 5:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(repeats_per_sync):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / repeats_per_sync)
        return statistics.median(times)
    fn()
    times = []
    start_all = time.perf_counter()
    while time.perf_counter() - start_all < min_time or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True, help="mpsnn benchmark binary")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--filter", default=".")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on both sides")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(os.cpu_count())
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32

    env = dict(os.environ, MPSNN_DEVICE=args.device)
    if args.tf32:
        env["MPSNN_BENCH_TF32"] = "1"
    out = subprocess.run([args.bench, f"--benchmark_filter={args.filter}", "--benchmark_format=json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    results = json.loads(out)
    context = results["context"]
    rows = []
    bandwidth = {}  # (family, shape, batch) -> (mpsnn bytes/s, torch bytes/s) for ops that report bytes
    modules, shapes = {}, {}
    for b in results["benchmarks"]:
        family, shape, batch = b["name"].split("/")[:3]
        if family not in modules:
            sys.path.insert(0, str(HERE))
            modules[family] = importlib.import_module(f"torch_{family}")
            shapes[family] = read_shapes(family)
        ours = b["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        fn = modules[family].make(shapes[family][shape], int(batch), args.device)
        theirs = time_torch(fn, args.device)
        rows.append((family, shape, int(batch), ours, theirs, theirs / ours))
        if "bytes" in b:
            bandwidth[(family, shape, int(batch))] = (b["bytes"] / ours, b["bytes"] / theirs)
        print(f"{family:12s} {shape:22s} {batch:>3s}  mpsnn {ours * 1e6:10.1f} us  torch {theirs * 1e6:10.1f} us"
              f"  ratio {theirs / ours:5.2f}", flush=True)

    geo = math.exp(sum(math.log(r[5]) for r in rows) / len(rows)) if rows else float("nan")
    worst = min(rows, key=lambda r: r[5]) if rows else None
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"{os.cpu_count()}-core CPU"
    def copy_fraction(family, shape, batch, which):
        # Bandwidth over the same-size device copy measured in this run (row "<prefix>.copy").
        ref = bandwidth.get((family, shape.split(".")[0] + ".copy", batch))
        own = bandwidth.get((family, shape, batch))
        return own[which] / ref[0] if ref and own else None

    with_bw = bool(bandwidth)
    header = f"| shape | batch | mpsnn (µs) | PyTorch {torch.__version__} (µs) | PyTorch / mpsnn |"
    lines = [header + (" mpsnn GB/s | of copy BW | PyTorch of copy BW |" if with_bw else ""),
             "|---|---:|---:|---:|---:|" + ("---:|---:|---:|" if with_bw else "")]
    for family, shape, batch, ours, theirs, ratio in rows:
        mark = " ⚠" if ratio < 0.9 else ""
        line = f"| {family}/{shape} | {batch} | {ours * 1e6:.1f} | {theirs * 1e6:.1f} | {ratio:.2f}{mark} |"
        if with_bw:
            own = bandwidth.get((family, shape, batch))
            f_ours, f_theirs = copy_fraction(family, shape, batch, 0), copy_fraction(family, shape, batch, 1)
            line += (f" {own[0] / 1e9:.1f} |" if own else " |") + (f" {f_ours:.2f} |" if f_ours else " |") + \
                    (f" {f_theirs:.2f} |" if f_theirs else " |")
        lines.append(line)
    lines.append("")
    lines.append(f"Device: {device_name} ({args.device}); TF32 {'on' if args.tf32 else 'off'} on both sides; "
                 f"{context.get('num_cpus', '?')} CPUs seen by the benchmark. Geometric mean ratio {geo:.2f}; "
                 f"lowest {worst[5]:.2f} ({worst[1]}/{worst[2]})." if worst else "")
    table = "\n".join(lines)
    print()
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
