"""The ``elmo`` command itself (its subcommands are tested in tests/commands/)."""

from __future__ import annotations

import pytest

import elmo
from elmo.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"elmo {elmo.__version__}"
