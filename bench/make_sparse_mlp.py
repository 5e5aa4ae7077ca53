#!/usr/bin/env python3
"""Writes the sparse MLP of issue 4 and, on request, times ONNX Runtime on it.

The model is a PyTorch-style MLP 1024-4096-4096-1024: `Gemm(transB=1)` layers (weights
`[out x in]`, a bias each) with `Relu` between them, input `x: [batch, 1024]` with a symbolic
batch, output `y: [batch, 1024]`. Weights are seeded He-scaled normals (std `sqrt(2 / in)`); each
layer then loses its `--sparsity` fraction of smallest magnitudes (per-layer magnitude pruning,
unstructured). Biases are small and dense.

Usage:
    python3 bench/make_sparse_mlp.py [--sparsity 0.9] [--seed 0] [--out PATH] [--dense PATH]
                                     [--ort 1,64] [--iterations 50] [--rounds 3] [--cpu]

`--out` defaults to `bench/models/mlp4096_s90.onnx` (the name follows the sparsity); `--dense`
also writes the unpruned model. `--ort` times ONNX Runtime (one intra-op thread, sequential,
every graph optimization) at the given batches: per round a fresh session, 5 warm-up runs and
`--iterations` timed runs; it prints the median of the round medians in milliseconds. `--cpu`
times the CPU time of the calling thread instead of wall time (steadier on a shared machine;
compare with `SPARSE_CPU=1 cargo run --release -p sparsec --example sparse_bench 7 mlp`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DIMS = [1024, 4096, 4096, 1024]


def layers(rng: np.random.Generator, sparsity: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The `(W [out x in], b [out])` of each layer, W pruned to `sparsity` zeros by magnitude."""
    out = []
    for fan_in, fan_out in zip(DIMS, DIMS[1:]):
        w = rng.standard_normal((fan_out, fan_in), dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        if sparsity > 0.0:
            k = int(round(sparsity * w.size))
            if k > 0:
                cut = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
                w[np.abs(w) <= cut] = 0.0
        b = (rng.standard_normal(fan_out, dtype=np.float32) * np.float32(0.01)).astype(np.float32)
        out.append((w, b))
    return out


def build(params: list[tuple[np.ndarray, np.ndarray]], name: str) -> onnx.ModelProto:
    """The ONNX model of the MLP with the given layer parameters."""
    nodes, inits = [], []
    prev = "x"
    for i, (w, b) in enumerate(params):
        wn, bn, yn = f"fc{i}.weight", f"fc{i}.bias", f"fc{i}"
        inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
        nodes.append(helper.make_node("Gemm", [prev, wn, bn], [yn], name=f"fc{i}", transB=1))
        prev = yn
        if i + 1 < len(params):
            nodes.append(helper.make_node("Relu", [prev], [f"relu{i}"], name=f"relu{i}"))
            prev = f"relu{i}"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", DIMS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", DIMS[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def time_ort(path: Path, batch: int, iterations: int, rounds: int, cpu: bool) -> float:
    """Median over `rounds` fresh sessions of the median run time in ms at `batch`, one thread
    (wall time, or with `cpu` the CPU time of the calling thread, which runs ORT's kernels when
    it has one intra-op thread)."""
    import onnxruntime as ort

    x = np.random.default_rng(1).standard_normal((batch, DIMS[0]), dtype=np.float32)
    medians = []
    for _ in range(rounds):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for _ in range(5):
            sess.run(None, {"x": x})
        times = []
        clock = time.thread_time if cpu else time.perf_counter
        for _ in range(iterations):
            t = clock()
            sess.run(None, {"x": x})
            times.append((clock() - t) * 1e3)
        medians.append(statistics.median(times))
    return statistics.median(medians)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dense", type=Path, help="also write the unpruned model here")
    ap.add_argument("--ort", default="", help="batches to time ONNX Runtime at, e.g. 1,64")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="time thread CPU time instead of wall time")
    args = ap.parse_args()
    if not 0.0 <= args.sparsity < 1.0:
        print(f"--sparsity {args.sparsity} is outside [0, 1)", file=sys.stderr)
        return 1
    here = Path(__file__).resolve().parent
    out = args.out or here / "models" / f"mlp4096_s{round(args.sparsity * 100)}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    params = layers(np.random.default_rng(args.seed), args.sparsity)
    onnx.save(build(params, "mlp4096_sparse"), str(out))
    zeros = sum(int((w == 0).sum()) for w, _ in params) / sum(w.size for w, _ in params)
    print(f"wrote {out} ({zeros:.1%} of weights zero)")
    written = [("sparse", out)]
    if args.dense:
        args.dense.parent.mkdir(parents=True, exist_ok=True)
        dense = layers(np.random.default_rng(args.seed), 0.0)
        onnx.save(build(dense, "mlp4096_dense"), str(args.dense))
        print(f"wrote {args.dense}")
        written.append(("dense", args.dense))
    for batch in [int(b) for b in args.ort.split(",") if b.strip()]:
        for label, path in written:
            ms = time_ort(path, batch, args.iterations, args.rounds, args.cpu)
            flops = 2 * batch * sum(a * b for a, b in zip(DIMS, DIMS[1:]))
            print(f"ORT 1 thread {label:<6} batch {batch:>3}: {ms:8.3f} ms  {flops / ms / 1e6:6.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
