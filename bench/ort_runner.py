#!/usr/bin/env python3
"""The ONNX Runtime side of the benchmark, run as its own process like `sparsec bench`.

It mirrors `sparsec bench MODEL --input NAME=FILE ... --threads T --warmup W --iterations K --json`:
one ONNX Runtime session (intra-op threads T, one inter-op thread, sequential execution, every graph
optimization enabled) with its inputs and outputs bound once, W untimed runs, K timed runs, and
ONE JSON object on stdout with `median_ms`, `min_ms`, `p90_ms`, `mean_ms`, `compile_ms` (session
creation), `threads`, `iterations`,
`peak_rss_bytes` (this process) and `baseline_rss_bytes` (this process after importing Python,
numpy and onnxruntime, before loading the model), so memory can be compared net of the interpreter.

Usage: python3 bench/ort_runner.py MODEL --input NAME=FILE.npy ... [--threads T] [--warmup W]
       [--iterations K]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import require  # noqa: E402

np, ort = require("numpy", "onnxruntime")


def peak_rss_bytes() -> int | None:
    """The peak resident set size of this process so far, in bytes (None where unknown)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024


def summarize(times_ms: list[float]) -> dict[str, float]:
    """Median, minimum, 90th percentile (nearest rank) and mean of timings in milliseconds."""
    ordered = sorted(times_ms)
    p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]
    return {
        "median_ms": float(np.median(ordered)),
        "min_ms": ordered[0],
        "p90_ms": p90,
        "mean_ms": float(np.mean(ordered)),
    }


def session_options(threads: int):
    """ONNX Runtime options of the benchmark: T intra-op threads, sequential, all optimizations."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def bench(model: str, inputs: dict[str, str], threads: int, warmup: int, iterations: int) -> dict:
    """Time `model` on the `.npy` inputs and return the result object."""
    baseline = peak_rss_bytes()
    arrays = {name: np.load(path) for name, path in inputs.items()}
    start = time.perf_counter()
    sess = ort.InferenceSession(model, session_options(threads), providers=["CPUExecutionProvider"])
    compile_ms = (time.perf_counter() - start) * 1e3
    declared = [i.name for i in sess.get_inputs()]
    missing = [n for n in declared if n not in arrays]
    if missing:
        raise ValueError(f"missing input(s): {', '.join(missing)}")
    # IO binding keeps the per-run Python overhead near 3 us; `run` costs about 5 us and
    # `run_with_ort_values` about 35 us here, which would dominate the smallest models.
    binding = sess.io_binding()
    for n in declared:
        binding.bind_ortvalue_input(n, ort.OrtValue.ortvalue_from_numpy(arrays[n]))
    for o in sess.get_outputs():
        binding.bind_output(o.name)
    for _ in range(warmup):
        sess.run_with_iobinding(binding)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        sess.run_with_iobinding(binding)
        times.append((time.perf_counter() - t0) * 1e3)
    result = summarize(times)
    result.update(
        compile_ms=compile_ms,
        threads=threads,
        warmup=warmup,
        iterations=iterations,
        peak_rss_bytes=peak_rss_bytes(),
        baseline_rss_bytes=baseline,
        onnxruntime=ort.__version__,
    )
    return result


def parse_inputs(specs: list[str]) -> dict[str, str]:
    """`NAME=FILE` pairs to a dict; exits with a message on a malformed pair."""
    pairs = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            sys.exit(f"error: --input `{spec}`: expected NAME=FILE")
        pairs[name] = path
    return pairs


def main() -> int:
    """Command-line entry point: prints one JSON object, or one `error: ...` line and exits 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="the ONNX model")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--baseline", action="store_true", help="only report the import baseline and exit"
    )
    args = parser.parse_args()
    if args.baseline:
        print(json.dumps({"baseline_rss_bytes": peak_rss_bytes()}))
        return 0
    if not args.model:
        parser.error("MODEL is required")
    if args.iterations < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--iterations and --threads must be at least 1, --warmup at least 0")
    try:
        result = bench(
            args.model, parse_inputs(args.input), args.threads, args.warmup, args.iterations
        )
    except Exception as e:  # ORT raises many exception types; report any as one line.
        print(f"error: {args.model}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
