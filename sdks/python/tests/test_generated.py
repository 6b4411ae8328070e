"""The committed models are what the generator makes of ../openapi.json."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import generate  # noqa: E402


def test_models_match_the_openapi_document(tmp_path: Path) -> None:
    fresh = tmp_path / "_models.py"
    generate.generate(fresh)
    committed = generate.OUTPUT.read_text(encoding="utf-8")
    made = fresh.read_text(encoding="utf-8")
    if made != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                made.splitlines(keepends=True),
                "src/chimatic/_models.py (committed)",
                "generated from sdks/openapi.json",
                n=2,
            )
        )
        raise AssertionError(
            "src/chimatic/_models.py differs from what the generator makes of sdks/openapi.json: "
            "run the generator (`target/sdk-python-venv/bin/python sdks/python/scripts/generate.py`)"
            " and commit the result.\n" + diff[:6000]
        )
