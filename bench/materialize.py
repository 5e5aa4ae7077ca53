#!/usr/bin/env python3
"""Materializes the nine light model-zoo architectures into benchmarkable models.

The light models of the ONNX backend test data replace every weight by a `ConstantOfShape` node that
fills it with one constant, which makes activations degenerate. This script replaces each such node
whose output is a weight by an initializer with meaningful random values (fixed seed): He-normal
(std = sqrt(2 / fan_in)) for Conv and Gemm weights, zeros for biases and additive terms, ones for
multiplicative terms, and for BatchNormalization scale 1, bias 0 and a mean and variance calibrated
with ONNX Runtime on a random input, layer by layer, so that activations stay near unit scale even
through residual sums. It writes `bench/models/light_NAME_he.onnx` and checks with ONNX Runtime that
each model runs and gives finite outputs.

Usage: python3 bench/materialize.py [--shared DIR] [--models NAME,...] [--seed S] [--force]
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    LIGHT_MODELS,
    MODELS_DIR,
    light_materialized,
    light_source,
    require,
    shared_dir,
)

np, onnx = require("numpy", "onnx")
from onnx import numpy_helper  # noqa: E402

#: Ops that only reshape a weight on its way to its consumer; roles are looked up through them.
PASS_THROUGH = {"Unsqueeze", "Reshape", "Identity", "Flatten", "Squeeze", "Transpose"}

#: Default seed of the random weights.
DEFAULT_SEED = 20240601


class MaterializeError(Exception):
    """A model that cannot be materialized or fails its check."""


def consumers_of(graph) -> dict[str, list[tuple[object, int]]]:
    """Map each value name to the `(node, operand index)` pairs that read it."""
    users: dict[str, list[tuple[object, int]]] = defaultdict(list)
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name:
                users[name].append((node, k))
    return users


def final_uses(name: str, users) -> list[tuple[object, int]]:
    """The `(node, operand index)` uses of `name`, looking through reshape-like ops."""
    found = []
    for node, k in users.get(name, []):
        if node.op_type in PASS_THROUGH and k == 0:
            found.extend(final_uses(node.output[0], users))
        else:
            found.append((node, k))
    return found


def attr_int(node, key: str, default: int) -> int:
    """The integer attribute `key` of `node`, or `default`."""
    for a in node.attribute:
        if a.name == key:
            return a.i
    return default


def role_of(uses) -> str | None:
    """The role of a weight from its final uses, or None when the uses disagree or are unknown.

    Roles: `conv_w`, `gemm_w`, `gemm_wt` (Gemm weight with transB=0), `zero`, `one`, `bn_mean`,
    `bn_var`.
    """
    roles = set()
    for node, k in uses:
        op = node.op_type
        if op == "Conv" and k == 1:
            roles.add("conv_w")
        elif op == "Gemm" and k == 1:
            roles.add("gemm_w" if attr_int(node, "transB", 0) else "gemm_wt")
        elif op in ("Conv", "Gemm") and k == 2:
            roles.add("zero")
        elif op == "BatchNormalization":
            roles.add({1: "one", 2: "zero", 3: "bn_mean", 4: "bn_var"}.get(k, "?"))
        elif op in ("Add", "Sub", "Sum"):
            roles.add("zero")
        elif op == "Mul":
            roles.add("one")
        else:
            roles.add("?")
    if len(roles) != 1 or "?" in roles:
        return None
    return roles.pop()


def make_values(role: str, shape: list[int], dtype, rng):
    """Random or constant values of `shape` for a weight playing `role`."""
    if role == "conv_w":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape).astype(dtype)
    if role == "gemm_w":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape).astype(dtype)
    if role == "gemm_wt":
        fan_in = shape[0] if shape else 1
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape).astype(dtype)
    if role == "zero":
        return np.zeros(shape, dtype=dtype)
    if role == "one":
        return np.ones(shape, dtype=dtype)
    if role == "bn_mean":
        return rng.normal(0.0, 0.1, size=shape).astype(dtype)
    if role == "bn_var":
        return rng.uniform(0.5, 1.5, size=shape).astype(dtype)
    raise MaterializeError(f"unknown weight role `{role}`")


def materialize(model, seed: int) -> tuple[object, dict[str, int], set[str]]:
    """Replace the weight-producing `ConstantOfShape` nodes of `model` by random initializers.

    Returns the model (modified in place), a count of weights per role and the names of the
    weights created. Initializers are removed
    from the graph inputs and the IR version raised to at least 4, so ONNX Runtime treats every
    weight as a constant.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    users = consumers_of(graph)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = defaultdict(int)
    replaced, new_inits = [], []
    for node in graph.node:
        if node.op_type != "ConstantOfShape":
            continue
        shape_name = node.input[0] if node.input else ""
        if shape_name not in inits:
            counts["kept (shape not constant)"] += 1
            continue
        role = role_of(final_uses(node.output[0], users))
        if role is None:
            counts["kept (not a weight)"] += 1
            continue
        shape = [int(d) for d in numpy_helper.to_array(inits[shape_name]).reshape(-1)]
        fill = next((a.t for a in node.attribute if a.name == "value"), None)
        dtype = np.float32
        if fill is not None:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(fill.data_type)
        values = make_values(role, shape, dtype, rng)
        new_inits.append(numpy_helper.from_array(values, name=node.output[0]))
        replaced.append(node)
        counts[role] += 1
    for node in replaced:
        graph.node.remove(node)
    graph.initializer.extend(new_inits)
    # Drop the shape constants nothing reads any more.
    still_read = {name for n in graph.node for name in n.input}
    outputs = {o.name for o in graph.output}
    for t in list(graph.initializer):
        if t.name not in still_read and t.name not in outputs:
            graph.initializer.remove(t)
    init_names = {t.name for t in graph.initializer}
    for vi in list(graph.input):
        if vi.name in init_names or (vi.name not in still_read and vi.name not in outputs):
            graph.input.remove(vi)
    model.ir_version = max(model.ir_version, 4)
    return model, dict(counts), {t.name for t in new_inits}


def random_feeds(sess, rng) -> dict:
    """One standard-normal float32 tensor per input of the ORT session, symbolic dims set to 1."""
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def bn_depths(graph, bns) -> dict[str, int]:
    """Map each BatchNormalization node's output name to its depth: 1 + the most BatchNormalization
    nodes on any path to its input (nodes are in topological order, as ONNX requires)."""
    bn_outputs = {n.output[0] for n in bns}
    depth: dict[str, int] = {}
    for node in graph.node:
        d = max((depth.get(name, 0) for name in node.input), default=0)
        if node.output and node.output[0] in bn_outputs:
            d = depth.get(node.input[0], 0) + 1
        for name in node.output:
            depth[name] = d
    return {name: depth[name] for name in bn_outputs}


def calibrate_batchnorm(model, created: set[str], rng) -> int:
    """Set every BatchNormalization mean and variance to the per-channel statistics of its input.

    The statistics are measured with ONNX Runtime on one random input, one pass per level of
    BatchNormalization depth, so each node is calibrated after every node above it. Only the weights
    named in `created` (made by this script) are changed. Returns the number of calibrated nodes.
    """
    (ort,) = require("onnxruntime")
    bns = [
        n
        for n in model.graph.node
        if n.op_type == "BatchNormalization"
        and len(n.input) >= 5
        and n.input[3] in created
        and n.input[4] in created
    ]
    if not bns:
        return 0
    # The probe reads the statistics as graph inputs and exposes every normalized tensor.
    targets = {n.input[k] for n in bns for k in (3, 4)}
    stats = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name in targets}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for t in [t for t in probe.graph.initializer if t.name in targets]:
        probe.graph.initializer.remove(t)
    for name, value in stats.items():
        probe.graph.input.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(value.shape))
        )
    have = {o.name for o in probe.graph.output}
    for name in dict.fromkeys(n.input[0] for n in bns):
        if name not in have:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1  # One thread keeps the reductions, hence the file, reproducible.
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {k: v for k, v in random_feeds(sess, rng).items() if k not in stats}
    depths = bn_depths(model.graph, bns)
    for level in range(1, max(depths.values()) + 1):
        wanted = [n.input[0] for n in bns if depths[n.output[0]] == level]
        values = dict(zip(wanted, sess.run(wanted, {**feeds, **stats})))
        for node in bns:
            if depths[node.output[0]] != level:
                continue
            x = values[node.input[0]]
            axes = tuple(i for i in range(x.ndim) if i != 1)
            mean, var = x.mean(axis=axes), np.maximum(x.var(axis=axes), 1e-3)
            stats[node.input[3]] = mean.astype(np.float32).reshape(stats[node.input[3]].shape)
            stats[node.input[4]] = var.astype(np.float32).reshape(stats[node.input[4]].shape)
    for t in model.graph.initializer:
        if t.name in stats:
            t.CopyFrom(numpy_helper.from_array(stats[t.name], t.name))
    return len(bns)


def check_with_ort(path: Path, seed: int) -> str:
    """Run the model at `path` once with ONNX Runtime on a random input; return a summary line.

    Raises `MaterializeError` when an output is not finite.
    """
    (ort,) = require("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = random_feeds(sess, np.random.default_rng(seed))
    parts = []
    for meta, out in zip(sess.get_outputs(), sess.run(None, feeds)):
        if not np.all(np.isfinite(out)):
            raise MaterializeError(f"{path.name}: output `{meta.name}` is not finite")
        parts.append(
            f"{meta.name} {list(out.shape)} mean={out.mean():.4g} std={out.std():.4g} "
            f"max={out.max():.4g}"
        )
    return "; ".join(parts)


def materialize_one(shared: Path, name: str, seed: int, force: bool = False) -> Path:
    """Materialize light model `name` unless its output exists (or `force`); check it with ORT.

    Returns the written path.
    """
    out = light_materialized(name)
    if out.exists() and not force:
        print(f"{name}: up to date ({out.name})")
        return out
    src = light_source(shared, name)
    if not src.is_file():
        raise MaterializeError(f"{name}: source model not found at {src} (set SPARSEC_SHARED)")
    model_seed = seed ^ zlib.crc32(name.encode())
    model, counts, created = materialize(onnx.load(str(src)), model_seed)
    calibrated = calibrate_batchnorm(model, created, np.random.default_rng(model_seed + 1))
    if calibrated:
        counts["bn calibrated"] = calibrated
    onnx.checker.check_model(model)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    try:
        summary = check_with_ort(tmp, model_seed)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    roles = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"{name}: wrote {out.name} ({roles}); ORT: {summary}")
    return out


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", help="shared data folder (default $SPARSEC_SHARED or ../shared)"
    )
    parser.add_argument(
        "--models", help="comma-separated light model names (default: all nine)", default=""
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--force", action="store_true", help="rewrite models that already exist")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n] or list(LIGHT_MODELS)
    unknown = [n for n in names if n not in LIGHT_MODELS]
    if unknown:
        print(f"error: unknown light model(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    shared = shared_dir(args.shared)
    failed = 0
    for name in names:
        try:
            materialize_one(shared, name, args.seed, args.force)
        except (MaterializeError, onnx.checker.ValidationError) as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
