#!/usr/bin/env python3
"""Benchmarks sparsec against ONNX Runtime, side by side, on the suite of models.

For each case (digits MLP and CNN at batch 1 and 256, tiny BERT, the nine materialized light
architectures) it writes one random input set (fixed seed, the model's dtypes) as `.npy` files in a
temporary folder, then for each thread count runs `sparsec bench MODEL --json --input ...
--threads T --warmup W --iterations K` and `bench/ort_runner.py` (ONNX Runtime with the same
threads, warmup and iterations) as separate processes on the same file and inputs, alternating
the two sides `--rounds` times (each round swaps which side goes first) so that a burst of load on
the shared machine does not skew only one side. It prints one table row per case and thread count:
the median of the per-round medians of each side, their ratio (with the spread of the per-round
ratios in the note), compile times and each side's highest peak resident memory (measured through
GNU time or a small launcher, see `rss_wrapper`). A failing `sparsec bench` (for example on an
unsupported model) is shown in the row and the run continues.

Usage: python3 bench/run.py [--threads 1,2] [--models NAME[:BATCH],...] [--sparsec PATH]
       [--iterations K] [--warmup W] [--rounds R] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Case, require, select, shared_dir, suite  # noqa: E402

np, onnx = require("numpy", "onnx")
require("onnxruntime")

#: Seed of the random inputs; each case mixes in a hash of its label.
DEFAULT_SEED = 7

#: The ONNX Runtime side, run as a child process.
ORT_RUNNER = Path(__file__).resolve().parent / "ort_runner.py"


#: Marker of the peak-RSS line the memory wrapper appends to a child's stderr.
RSS_MARK = "sparsec-bench-maxrss-kb"

#: A small launcher used when GNU time is absent: it runs the command, waits for it and reports its
#: peak RSS. Linux carries a parent's resident size into a forked child's peak, so the child must be
#: forked from a small process, never from this harness.
LAUNCHER = f"""
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as e:
        sys.stderr.write("cannot run %s: %s\\n" % (sys.argv[1], e))
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
kb = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
sys.stderr.write("\\n{RSS_MARK} %d\\n" % kb)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def rss_wrapper() -> tuple[list[str], str]:
    """The command prefix that reports a child's peak RSS, and its name for the results.

    GNU time (`/usr/bin/time -f`) is preferred: its own footprint is about 2 MB, which bounds the
    error it adds. The Python launcher adds up to its own size (about 10 MB).
    """
    gnu = shutil.which("time") or "/usr/bin/time"
    if os.access(gnu, os.X_OK):
        probe = subprocess.run(
            [gnu, "-f", f"{RSS_MARK} %M", "true"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0 and RSS_MARK in probe.stderr:
            return [gnu, "-f", f"{RSS_MARK} %M"], "gnu time"
    return [sys.executable, "-S", "-c", LAUNCHER], "python launcher"


@dataclass
class ChildResult:
    """What a finished child left: exit code, output, peak memory, whether it timed out."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_bytes: int | None
    timed_out: bool


def run_child(cmd: list[str], timeout: float, wrapper: list[str]) -> ChildResult:
    """Run `cmd` under the memory `wrapper` to completion and collect its output and peak RSS.

    The child gets its own process group, killed as a whole after `timeout` seconds.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            wrapper + cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        out.seek(0)
        err.seek(0)
        stderr_lines, peak = [], None
        for line in err.read().decode(errors="replace").splitlines():
            if line.startswith(RSS_MARK):
                peak = int(line.split()[-1]) * 1024
            elif not line.startswith(("Command exited with", "Command terminated by")):
                stderr_lines.append(line)
        return ChildResult(
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr="\n".join(stderr_lines),
            peak_rss_bytes=peak,
            timed_out=killed.is_set(),
        )


def parse_json_result(child: ChildResult, who: str) -> tuple[dict | None, str | None]:
    """The JSON object a bench child printed, or an error line describing why there is none."""
    if child.timed_out:
        return None, f"{who}: timed out"
    if child.returncode != 0:
        lines = [ln.strip() for ln in child.stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {child.returncode}"
        return None, f"{who}: {reason}"
    try:
        obj = json.loads(child.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None, f"{who}: stdout is not one JSON object"
    if not isinstance(obj, dict) or "median_ms" not in obj:
        return None, f"{who}: JSON result lacks median_ms"
    return obj, None


def median(xs: list[float]) -> float:
    """The median of a non-empty list (the mean of the middle two for an even length)."""
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def combine_rounds(
    children: list[ChildResult], who: str
) -> tuple[dict | None, str | None, int | None]:
    """Merge the rounds of one side: its result, an error line, and the highest peak RSS.

    The result is the last successful round's JSON object with `median_ms` and `compile_ms`
    replaced by the median over the rounds, and `round_medians_ms` / `round_compile_ms` holding
    each round's value. A failing round makes the whole side an error (the first one is kept).
    """
    objs = []
    for child in children:
        obj, err = parse_json_result(child, who)
        if err:
            return None, err, child.peak_rss_bytes
        objs.append(obj)
    peaks = [c.peak_rss_bytes for c in children if c.peak_rss_bytes is not None]
    peak = max(peaks) if peaks else None
    merged = dict(objs[-1])
    merged["round_medians_ms"] = [o["median_ms"] for o in objs]
    trips = [o["round_trip_ns"] for o in objs if isinstance(o.get("round_trip_ns"), (int, float))]
    if trips:
        merged["round_trips_ns"] = trips
    merged["median_ms"] = median(merged["round_medians_ms"])
    compiles = [o["compile_ms"] for o in objs if isinstance(o.get("compile_ms"), (int, float))]
    if compiles:
        merged["round_compile_ms"] = compiles
        merged["compile_ms"] = median(compiles)
    return merged, None, peak


def make_inputs(
    case: Case, model, folder: Path, seed: int
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write one random input set of `case` as `.npy` files in `folder`.

    Returns the files by input name and the symbolic dimensions bound to the case's batch.
    Integer inputs named like a mask get ones, like token types zeros, others ids below the vocab.
    """
    rng = np.random.default_rng(seed ^ zlib.crc32(case.label.encode()))
    weights = {t.name for t in model.graph.initializer}
    files, dims = {}, {}
    for k, vi in enumerate(i for i in model.graph.input if i.name not in weights):
        tt = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        shape = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(d.dim_value)
            else:
                shape.append(case.batch)
                if d.dim_param:
                    dims[d.dim_param] = case.batch
        lowered = vi.name.lower()
        if np.issubdtype(dtype, np.floating):
            if case.float_range:
                data = rng.uniform(*case.float_range, size=shape)
            else:
                data = rng.standard_normal(shape)
        elif dtype == np.bool_ or "mask" in lowered:
            data = np.ones(shape)
        elif "type" in lowered:
            data = np.zeros(shape)
        else:
            data = rng.integers(0, case.vocab, size=shape)
        path = folder / f"input_{k}.npy"
        np.save(path, data.astype(dtype))
        files[vi.name] = path
    return files, dims


def mb(n: int | None) -> str:
    """Bytes as megabytes for the table, `-` when unknown."""
    return "-" if n is None else f"{n / 2**20:.0f}"


def ms(x: float | None) -> str:
    """Milliseconds for the table, `-` when unknown."""
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


COLUMNS = [
    ("model", 22),
    ("batch", 5),
    ("thr", 3),
    ("sparsec ms", 10),
    ("ORT ms", 10),
    ("ratio", 6),
    ("compile ms", 10),
    ("ORT init ms", 11),
    ("sparsec MB", 10),
    ("ORT MB*", 8),
    ("note", 0),
]


def row_text(cells: list[str], columns: list[tuple[str, int]] | None = None) -> str:
    """One table line of `columns` (default this table's): left-aligned first column,
    right-aligned numbers, free-width note (width 0)."""
    parts = []
    for (_, width), cell in zip(columns or COLUMNS, cells):
        if width == 0:
            parts.append(cell)
        elif not parts:
            parts.append(cell.ljust(width))
        else:
            parts.append(cell.rjust(width))
    return "  ".join(parts).rstrip()


def ensure_model(case: Case, shared: Path) -> None:
    """Create a materialized light model on first use."""
    if case.materialized and not case.path.exists():
        import materialize

        print(f"note: materializing {case.path.name} (once)", file=sys.stderr)
        name = case.name.removeprefix("light_")
        materialize.materialize_one(shared, name, materialize.DEFAULT_SEED)


def print_row(result: dict) -> None:
    """Print one result of `bench_case` as a row of the main table."""
    if "error" in result:
        cells = [result["model"], str(result["batch"]), "-"] + ["-"] * 7 + [result["error"]]
        print(row_text(cells), flush=True)
        return
    sp, ot, ratio = result.get("sparsec"), result.get("ort"), result.get("ratio")
    sp = sp if sp and "error" not in sp else None
    ot = ot if ot and "error" not in ot else None
    cells = [
        result["model"],
        str(result["batch"]),
        str(result["threads"]),
        ms(sp and sp.get("median_ms")),
        ms(ot and ot.get("median_ms")),
        "-" if ratio is None else f"{ratio:.2f}",
        ms(sp and sp.get("compile_ms")),
        ms(ot and ot.get("compile_ms")),
        mb(result.get("sparsec_peak_rss_bytes")) if sp else "-",
        mb(result.get("ort_net_rss_bytes")) if ot else "-",
        "; ".join(result["notes"])[:160],
    ]
    print(row_text(cells), flush=True)


def bench_case(
    case: Case, args, shared: Path, baseline: int | None, printer=print_row
) -> list[dict]:
    """Run one case at every thread count; print (through `printer`, one call per result) and
    return one result per thread count."""
    try:
        ensure_model(case, shared)
    except Exception as e:  # Materialization failures become a row, not a crash.
        result = {"model": case.name, "batch": case.batch, "error": f"setup: {e}"}
        printer(result)
        return [result]
    if not case.path.is_file():
        note = f"model not found: {case.path.name} (set SPARSEC_SHARED)"
        result = {"model": case.name, "batch": case.batch, "error": note}
        printer(result)
        return [result]
    results = []
    with tempfile.TemporaryDirectory(prefix="sparsec-bench-") as tmp:
        model = onnx.load(str(case.path), load_external_data=False)
        files, dims = make_inputs(case, model, Path(tmp), args.seed)
        del model
        input_args = [a for name, path in files.items() for a in ("--input", f"{name}={path}")]
        common = ["--warmup", str(args.warmup), "--iterations", str(args.iterations)]
        for threads in args.threads:
            per_t = common + ["--threads", str(threads)]
            dim_args = [a for k, v in dims.items() for a in ("--dim", f"{k}={v}")]
            sp_cmd = [args.sparsec, "bench", str(case.path), "--json"]
            sp_cmd += [*input_args, *dim_args, *per_t]
            ort_cmd = [sys.executable, str(ORT_RUNNER), str(case.path), *input_args, *per_t]
            sides = [] if args.skip_sparsec else [("sparsec", sp_cmd)]
            sides.append(("ORT", ort_cmd))
            runs = {who: [] for who, _ in sides}
            for r in range(args.rounds):
                # Alternate which side goes first, so a slow phase of the machine does not always
                # land on the same side.
                for who, cmd in sides if r % 2 == 0 else sides[::-1]:
                    runs[who].append(run_child(cmd, args.timeout, args.wrapper))
            result = {"model": case.name, "batch": case.batch, "threads": threads}
            notes = []
            sp = None
            if not args.skip_sparsec:
                sp, err, peak = combine_rounds(runs["sparsec"], "sparsec")
                result["sparsec"] = sp if sp is not None else {"error": err}
                result["sparsec_peak_rss_bytes"] = peak
                if err:
                    notes.append(err)
            ot, err, ort_peak = combine_rounds(runs["ORT"], "ORT")
            result["ort"] = ot if ot is not None else {"error": err}
            result["ort_peak_rss_bytes"] = ort_peak
            if err:
                notes.append(err)
            ratio = None
            if sp and ot and ot["median_ms"] > 0:
                ratio = sp["median_ms"] / ot["median_ms"]
            result["ratio"] = ratio
            if sp and ot:
                # The spread of the per-round ratios shows how far to trust the median one.
                per_round = [
                    a / b for a, b in zip(sp["round_medians_ms"], ot["round_medians_ms"]) if b > 0
                ]
                result["round_ratios"] = per_round
                if len(per_round) > 1:
                    notes.append(f"round ratios {min(per_round):.2f}-{max(per_round):.2f}")
            if sp and sp.get("round_trips_ns"):
                # sparsec's thread round trip per round: far-apart threads explain slow rounds.
                trips = sp["round_trips_ns"]
                notes.append(f"round trip {min(trips)}-{max(trips)} ns")
            ort_net = None
            if ort_peak is not None and baseline is not None:
                ort_net = max(ort_peak - baseline, 0)
            result["ort_net_rss_bytes"] = ort_net
            result["notes"] = notes
            printer(result)
            results.append(result)
    return results


def write_json(args, info: dict, baseline: int | None, results: list, **extra) -> None:
    """Writes the run's settings and results to `args.json` (`extra` keys go first)."""
    doc = {
        **extra,
        "machine": info,
        "settings": {
            "threads": args.threads,
            "warmup": args.warmup,
            "iterations": args.iterations,
            "rounds": args.rounds,
            "seed": args.seed,
            "sparsec": args.sparsec,
        },
        "ort_baseline_rss_bytes": baseline,
        "results": results,
    }
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")


def ort_baseline(timeout: float, wrapper: list[str]) -> int | None:
    """Peak RSS of a child that only imports numpy and onnxruntime (subtracted from ORT's)."""
    child = run_child([sys.executable, str(ORT_RUNNER), "--baseline"], timeout, wrapper)
    return child.peak_rss_bytes if child.returncode == 0 else None


def machine_info() -> dict:
    """Where and when the run happened: CPU, cores, Python, onnxruntime, repository commit."""
    import onnxruntime

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "commit": commit,
    }


def parse_args(argv=None):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--threads", default="1,2", help="comma-separated thread counts (default 1,2)"
    )
    parser.add_argument(
        "--models",
        action="append",
        help="NAME or NAME:BATCH, comma-separated or repeated (default: all)",
    )
    parser.add_argument(
        "--sparsec", default=str(REPO / "target" / "release" / "sparsec"),
        help="the sparsec binary (default target/release/sparsec)",
    )
    parser.add_argument(
        "--iterations", type=int, default=20, help="timed runs per side (default 20)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="sparsec/ORT process pairs per case and thread count, alternated (default 3)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write every result to this JSON file")
    parser.add_argument(
        "--shared", help="shared data folder (default $SPARSEC_SHARED or ../shared)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the random inputs")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    parser.add_argument(
        "--skip-sparsec", action="store_true", help="run the ONNX Runtime side only"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        parser.error(f"--threads `{args.threads}`: expected comma-separated integers")
    if not args.threads or min(args.threads) < 1:
        parser.error("--threads: every count must be at least 1")
    if args.iterations < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--iterations and --rounds must be at least 1 and --warmup at least 0")
    args.models = [m for group in args.models or [] for m in group.split(",") if m]
    return args


def main(argv=None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    shared = shared_dir(args.shared)
    cases = select(suite(shared), args.models)
    if args.list:
        for case in cases:
            print(f"{case.label:28} {case.path}")
        return 0
    if not args.skip_sparsec and not os.access(args.sparsec, os.X_OK):
        print(
            f"error: sparsec binary not found at {args.sparsec}: build it with "
            "`cargo build --release`, pass --sparsec PATH, or use --skip-sparsec",
            file=sys.stderr,
        )
        return 2
    args.wrapper, rss_method = rss_wrapper()
    baseline = ort_baseline(args.timeout, args.wrapper)
    info = machine_info()
    info["peak_rss_method"] = rss_method
    print(
        f"# {info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']}, "
        f"warmup {args.warmup}, {args.rounds} alternating rounds of {args.iterations} runs "
        "per side, median of the round medians"
    )
    print(row_text([name for name, _ in COLUMNS]))
    results = []
    for case in cases:
        results.extend(bench_case(case, args, shared, baseline))
    print(
        "ratio = sparsec median / ORT median (below 1: sparsec faster). "
        f"* ORT peak RSS minus the Python+onnxruntime import baseline ({mb(baseline)} MB)."
    )
    if args.json:
        write_json(args, info, baseline, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
