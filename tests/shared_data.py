"""Where tests find the shared corpus and reference fixtures (``../shared`` next to the repo).

Locally a test that needs them is skipped when they are absent; in CI (``CI=true``) it fails
instead, so that a missing checkout of the shared data can never turn into a silently green run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_ROOT = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts: str) -> Path:
    """The path ``shared/<parts...>``; skips the calling test (fails in CI) when it is missing.

    Args:
        parts: path components below ``shared/``, e.g. ``("fixtures", "elmo-random-mid")``.

    Returns:
        The existing path.
    """
    path = SHARED_ROOT.joinpath(*parts)
    if not path.exists():
        message = f"shared data not found: {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the shared data must be present)", pytrace=False)
        pytest.skip(message)
    return path
