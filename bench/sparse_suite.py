#!/usr/bin/env python3
"""The sparse benchmark suite: sparsec vs ONNX Runtime on 90%-sparse models and their dense
counterparts, side by side on the same files, speedups printed as ORT / sparsec.

Cases (each also run dense for reference):
- `mlp4096_s90:1`, `mlp4096_s90:64`: the MLP 1024-4096-4096-1024 with 90% of each layer's
  weights zeroed by magnitude (`bench/make_sparse_mlp.py`; a stand-in generator here when that
  script is missing or fails), dense counterpart `mlp4096_dense`;
- `resnet50_s90:1`: `light_resnet50_he.onnx` pruned by `sparsec prune --sparsity 0.9 --scope layer`
  (magnitude, 90% of every layer but the ones the default policy keeps dense: the first conv and the
  classifier; random He weights carry no learned importance, and a global threshold over them only
  reflects each layer's fan-in), dense counterpart `light_resnet50`;
- `tiny_bert_s90:1`: tiny BERT with every MatMul weight pruned to 90% zeros (`sparsec prune
  --sparsity 0.9 --scope layer --all-layers`), dense counterpart `tiny_bert`.

The models are prepared once into the git-ignored `bench/models/` (the prune log beside each
pruned model as `.prune.txt`). Timing is `run.py`'s: for each case and thread count, `--rounds`
alternating process pairs of `sparsec bench` and `ort_runner.py` on the same file and inputs; peak
RSS of both processes through GNU time (`%M`, the max RSS of `time -v`) or the fork launcher.

Usage: python3 bench/sparse_suite.py [--threads 1,2] [--models NAME[:BATCH],...] [--rounds R]
       [--iterations K] [--warmup W] [--sparsec PATH] [--json OUT] [--list]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402
from common import MODELS_DIR, Case, light_materialized, select, shared_dir  # noqa: E402

np, onnx = run.np, run.onnx

BENCH = Path(__file__).resolve().parent
MLP_DIMS = [1024, 4096, 4096, 1024]


def cases(shared: Path) -> list[Case]:
    """Every case of the sparse suite: each sparse model followed by its dense counterpart."""
    bert = shared / "models" / "transformer" / "tiny_bert_random.onnx"
    return [
        Case("mlp4096_s90", MODELS_DIR / "mlp4096_s90.onnx", 1),
        Case("mlp4096_dense", MODELS_DIR / "mlp4096_dense.onnx", 1),
        Case("mlp4096_s90", MODELS_DIR / "mlp4096_s90.onnx", 64),
        Case("mlp4096_dense", MODELS_DIR / "mlp4096_dense.onnx", 64),
        Case("resnet50_s90", MODELS_DIR / "light_resnet50_he_s90.onnx", 1),
        Case("light_resnet50", light_materialized("resnet50"), 1, materialized=True),
        Case("tiny_bert_s90", MODELS_DIR / "tiny_bert_s90.onnx", 1, vocab=1000),
        Case("tiny_bert", bert, 1, vocab=1000),
    ]


#: The dense counterpart of each sparse case.
DENSE = {"mlp4096_s90": "mlp4096_dense", "resnet50_s90": "light_resnet50", "tiny_bert_s90": "tiny_bert"}


def standin_mlp(sparsity: float, out: Path, seed: int = 0) -> None:
    """A stand-in for `make_sparse_mlp.py`: the same MLP (Gemm transB=1 + Relu, He-normal weights,
    per-layer magnitude pruning to `sparsity`, small dense biases, input `x: [batch, 1024]`)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(zip(MLP_DIMS, MLP_DIMS[1:])):
        w = rng.standard_normal((fan_out, fan_in), dtype=np.float32) * np.float32(
            np.sqrt(2.0 / fan_in)
        )
        k = int(round(sparsity * w.size))
        if k > 0:
            cut = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
            w[np.abs(w) <= cut] = 0.0
        b = rng.standard_normal(fan_out, dtype=np.float32) * np.float32(0.01)
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
        last = i + 2 == len(MLP_DIMS)
        y = "y" if last else f"fc{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"], [y], name=f"fc{i}", transB=1))
        prev = y
        if not last:
            nodes.append(helper.make_node("Relu", [prev], [f"relu{i}"], name=f"relu{i}"))
            prev = f"relu{i}"
    graph = helper.make_graph(
        nodes,
        "mlp4096_standin",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", MLP_DIMS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", MLP_DIMS[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(out))


def make_mlp(sparsity: float, out: Path) -> str:
    """Writes the MLP at `sparsity` to `out` with `make_sparse_mlp.py`, else the stand-in; returns
    which one made it."""
    script = BENCH / "make_sparse_mlp.py"
    if script.is_file():
        for flag in ("-o", "--out"):
            cmd = [sys.executable, str(script), "--sparsity", str(sparsity), flag, str(out)]
            if subprocess.run(cmd, capture_output=True, text=True).returncode == 0 and out.is_file():
                return "make_sparse_mlp.py"
    standin_mlp(sparsity, out)
    return "stand-in generator in sparse_suite.py (make_sparse_mlp.py missing or failed)"


def sparsec_prune(sparsec: str, src: Path, out: Path, flags: list[str]) -> None:
    """`sparsec prune src -o out FLAGS`, its log kept beside the output."""
    cmd = [sparsec, "prune", str(src), "-o", str(out), *flags]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])}: {r.stderr.strip()}")
    out.with_suffix(".prune.txt").write_text(" ".join(cmd[1:]) + "\n" + r.stdout)
    total = [ln for ln in r.stdout.splitlines() if ln.startswith("total:")]
    print(f"note: pruned {out.name}: {total[0] if total else 'done'}", file=sys.stderr)


def prepare(case: Case, args, shared: Path) -> None:
    """Create the model of `case` if it is missing (the dense source first where one is needed)."""
    if case.path.is_file():
        return
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    if case.name.startswith("mlp4096"):
        sparsity = 0.0 if case.name.endswith("dense") else 0.9
        how = make_mlp(sparsity, case.path)
        print(f"note: wrote {case.path.name} with {how}", file=sys.stderr)
    elif case.name == "resnet50_s90":
        dense = light_materialized("resnet50")
        run.ensure_model(Case("light_resnet50", dense, 1, materialized=True), shared)
        sparsec_prune(args.sparsec, dense, case.path, ["--sparsity", "0.9", "--scope", "layer"])
    elif case.name == "tiny_bert_s90":
        src = shared / "models" / "transformer" / "tiny_bert_random.onnx"
        flags = ["--sparsity", "0.9", "--scope", "layer", "--all-layers"]
        sparsec_prune(args.sparsec, src, case.path, flags)


COLUMNS = [
    ("case", 18),
    ("thr", 3),
    ("sparsec ms", 10),
    ("ORT ms", 10),
    ("ORT/sparsec", 11),
    ("compile ms", 10),
    ("sparsec MB", 10),
    ("ORT MB", 7),
    ("ORT MB*", 8),
    ("note", 0),
]


def row(cells: list[str]) -> str:
    """One line of the sparse table (`run.row_text` over its columns)."""
    return run.row_text(cells, COLUMNS)


def ok_side(result: dict, key: str) -> dict | None:
    """The side's merged JSON object, or None when it failed or did not run."""
    side = result.get(key)
    return side if side and "error" not in side else None


def print_result(result: dict) -> None:
    """One row of the sparse table."""
    label = f"{result['model']}:{result['batch']}"
    if "error" in result:
        print(row([label, "-"] + ["-"] * 7 + [result["error"]]), flush=True)
        return
    sp, ot = ok_side(result, "sparsec"), ok_side(result, "ort")
    speedup = None
    if sp and ot and sp["median_ms"] > 0:
        speedup = ot["median_ms"] / sp["median_ms"]
    result["speedup_ort_over_sparsec"] = speedup
    cells = [
        label,
        str(result["threads"]),
        run.ms(sp and sp["median_ms"]),
        run.ms(ot and ot["median_ms"]),
        "-" if speedup is None else f"{speedup:.2f}x",
        run.ms(sp and sp.get("compile_ms")),
        run.mb(result.get("sparsec_peak_rss_bytes")) if sp else "-",
        run.mb(result.get("ort_peak_rss_bytes")) if ot else "-",
        run.mb(result.get("ort_net_rss_bytes")) if ot else "-",
        "; ".join(notes(result))[:160],
    ]
    print(row(cells), flush=True)


def notes(result: dict) -> list[str]:
    """The row's notes, with `run.py`'s per-round sparsec/ORT ratios turned into per-round
    speedups (ORT/sparsec) like the table's column."""
    out = [n for n in result.get("notes", []) if not n.startswith("round ratios")]
    speedups = [1 / r for r in result.get("round_ratios", []) if r > 0]
    if len(speedups) > 1:
        out.append(f"round speedups {min(speedups):.2f}-{max(speedups):.2f}x")
    return out


def sparse_vs_dense(results: list[dict]) -> list[str]:
    """Lines comparing each sparse case with its dense counterpart, per side and thread count."""
    by_key = {(r["model"], r["batch"], r.get("threads")): r for r in results}
    lines = []
    for r in results:
        dense_name = DENSE.get(r["model"])
        d = by_key.get((dense_name, r["batch"], r.get("threads")))
        if not d:
            continue
        parts = []
        for key, who in (("sparsec", "sparsec"), ("ort", "ORT")):
            a, b = ok_side(r, key), ok_side(d, key)
            if a and b and a["median_ms"] > 0:
                parts.append(f"{who} {b['median_ms'] / a['median_ms']:.2f}x")
        if parts:
            lines.append(
                f"  {r['model']}:{r['batch']} thr {r['threads']}: dense/sparse time "
                + ", ".join(parts)
            )
    return lines


def main(argv=None) -> int:
    """Command-line entry point (the flags of `run.py`)."""
    args = run.parse_args(argv)
    shared = shared_dir(args.shared)
    chosen = select(cases(shared), args.models)
    if args.list:
        for case in chosen:
            print(f"{case.label:28} {case.path}")
        return 0
    if not os.access(args.sparsec, os.X_OK):
        print(f"error: sparsec binary not found at {args.sparsec}: `cargo build --release`", file=sys.stderr)
        return 2
    args.wrapper, rss_method = run.rss_wrapper()
    baseline = run.ort_baseline(args.timeout, args.wrapper)
    info = run.machine_info()
    info["peak_rss_method"] = rss_method
    print(
        f"# sparse suite: {info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']}, "
        f"warmup {args.warmup}, {args.rounds} alternating rounds of {args.iterations} runs per "
        "side, median of the round medians"
    )
    print(row([name for name, _ in COLUMNS]))
    results = []
    for case in chosen:
        try:
            prepare(case, args, shared)
        except Exception as e:  # A failed preparation becomes a row, not a crash.
            result = {"model": case.name, "batch": case.batch, "error": f"setup: {e}"}
            print_result(result)
            results.append(result)
            continue
        results.extend(run.bench_case(case, args, shared, baseline, printer=print_result))
    print(
        "ORT/sparsec = ORT median / sparsec median (above 1: sparsec is that many times faster). "
        f"ORT MB: peak RSS of the ORT process; * minus the Python+onnxruntime import baseline "
        f"({run.mb(baseline)} MB). Memory by {rss_method}."
    )
    lines = sparse_vs_dense(results)
    if lines:
        print("sparse vs dense (same side, same threads):")
        print("\n".join(lines))
    if args.json:
        run.write_json(args, info, baseline, results, suite="sparse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
