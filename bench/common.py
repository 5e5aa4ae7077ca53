"""Helpers shared by the benchmark scripts: locating the repository and the shared data folder,
checking that the Python modules the harness needs are installed, and the suite's model list."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: The repository root (the folder that holds `bench/`).
REPO = Path(__file__).resolve().parent.parent

#: Where `materialize.py` writes the light models with meaningful weights (git-ignored).
MODELS_DIR = REPO / "bench" / "models"

#: The nine light model-zoo architectures of the ONNX backend test data.
LIGHT_MODELS = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def require(*modules: str):
    """Import the named modules, or exit with a message saying how to install the missing ones.

    Returns the imported modules in the order given.
    """
    loaded, missing = [], []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        sys.exit(
            f"error: missing Python module(s): {', '.join(missing)}; "
            "install them with `pip install onnxruntime numpy onnx`"
        )
    return loaded


def shared_dir(explicit: str | None = None) -> Path:
    """The shared data folder: `explicit`, else `$SPARSEC_SHARED`, else `../shared` from the current
    folder, else `../shared` beside the repository (the same rule as the Rust tests)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("SPARSEC_SHARED")
    if env:
        return Path(env)
    cwd = Path("../shared")
    if cwd.is_dir():
        return cwd.resolve()
    return (REPO / ".." / "shared").resolve()


def light_source(shared: Path, name: str) -> Path:
    """The original light model `name` in the shared data (weights made by `ConstantOfShape`)."""
    return shared / "onnx-backend-tests" / "light" / f"light_{name}.onnx"


def light_materialized(name: str) -> Path:
    """Where the materialized light model `name` (random He-normal weights) is written."""
    return MODELS_DIR / f"light_{name}_he.onnx"


@dataclass(frozen=True)
class Case:
    """One benchmark case: a model file run at one batch size with one kind of random input."""

    #: Short model name shown in the table and matched by `--models`.
    name: str
    #: The ONNX file.
    path: Path
    #: Value bound to the model's symbolic dimensions (its batch), or the fixed batch for display.
    batch: int
    #: How float inputs are drawn: `(low, high)` for uniform values, `None` for a standard normal.
    float_range: tuple[float, float] | None = None
    #: Upper bound (exclusive) of integer ids such as BERT's `input_ids`.
    vocab: int = 1000
    #: True when the model file is produced by `materialize.py` and may need to be created first.
    materialized: bool = False

    @property
    def label(self) -> str:
        """`name:batch`, the case's unique label."""
        return f"{self.name}:{self.batch}"


def suite(shared: Path) -> list[Case]:
    """Every case of the benchmark suite, in the order the table prints them."""
    models = shared / "models"
    digits = models / "digits"
    pixels = (0.0, 16.0)  # The digits images hold grey levels 0..16.
    cases = [
        Case("digits_mlp", digits / "digits_mlp.onnx", 1, pixels),
        Case("digits_mlp", digits / "digits_mlp.onnx", 256, pixels),
        Case("digits_cnn", digits / "digits_cnn.onnx", 1, pixels),
        Case("digits_cnn", digits / "digits_cnn.onnx", 256, pixels),
        Case("tiny_bert", models / "transformer" / "tiny_bert_random.onnx", 1, vocab=1000),
    ]
    for light in LIGHT_MODELS:
        cases.append(Case(f"light_{light}", light_materialized(light), 1, materialized=True))
    return cases


def select(cases: list[Case], patterns: list[str] | None) -> list[Case]:
    """The cases matching any of `patterns`: `NAME` (every batch of a model) or `NAME:BATCH`.

    Exits with a message naming the pattern when a pattern matches nothing.
    """
    if not patterns:
        return cases
    chosen = []
    for pattern in patterns:
        hits = [c for c in cases if pattern in (c.name, c.label)]
        if not hits:
            known = ", ".join(sorted({c.name for c in cases}))
            sys.exit(f"error: --models `{pattern}` matches no case; known models: {known}")
        chosen.extend(c for c in hits if c not in chosen)
    return [c for c in cases if c in chosen]
