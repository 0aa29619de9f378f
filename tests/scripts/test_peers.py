"""scripts/peers.py's pure parts: trimming a module to what some names reach, and the character
ids that make ELMoForManyLangs read the published character embedding as AllenNLP does."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

SOURCE = '''"""A module."""
import math
import os
from typing import TypeVar

from allennlp.common.checks import ConfigurationError
from allennlp.common.util import unused_helper

T = TypeVar("T")


def wanted(x: T) -> T:
    if x < 0:
        raise ConfigurationError("negative")
    return helper(x)


def helper(x):
    return math.sqrt(x)


def unrelated():
    return os.getcwd(), unused_helper()
'''


@pytest.fixture(scope="module")
def peers():
    sys.path.insert(0, str(SCRIPTS))  # peers.py imports its sibling bench_embed.py
    try:
        import peers

        yield peers
    finally:
        sys.path.remove(str(SCRIPTS))


def test_a_trimmed_module_keeps_what_the_names_reach_and_asks_for_the_rest(peers):
    wanted: dict[str, set[str]] = {}
    trimmed = peers.trim_module(SOURCE, {"wanted"}, wanted)
    tree = ast.parse(trimmed)
    defined = {name for node in tree.body for name in peers._bound_names(node)}
    assert defined == {"wanted", "helper", "T"}
    imported = {alias.asname or alias.name for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}  # fmt: skip
    assert imported == {"math", "TypeVar", "ConfigurationError"}
    assert wanted == {"allennlp/common/checks.py": {"ConfigurationError"}}


def test_manylangs_character_ids_are_allennlps(peers):
    characters = peers.manylangs_characters()
    assert sorted(characters.values()) == list(range(262))  # the published embedding's rows
    assert characters["a"] == ord("a") + 1 and characters["<pad>"] == 261
    # ELMoForManyLangs reads its begin-of-word id from "<eow>": AllenNLP's 258 + 1
    assert (characters["<eow>"], characters["<bow>"]) == (259, 260)
    assert all(not c.isspace() for c in characters)  # char.dic lines are stripped when read


def test_the_peers_run_without_the_settings_elmo_made_but_with_the_users(peers, monkeypatch):
    from elmo import hugepages, openmp

    monkeypatch.setattr(openmp, "added", True)  # import elmo set the spin count ...
    monkeypatch.setattr(hugepages, "added", False)  # ... and the user set huge pages
    monkeypatch.setenv("GOMP_SPINCOUNT", openmp.SPIN_COUNT)
    monkeypatch.setenv(hugepages.SETTING, "0")
    env = peers.peer_environment({"allennlp": Path("a"), "manylangs": Path("m")}, threads=2)
    assert "GOMP_SPINCOUNT" not in env
    assert env[hugepages.SETTING] == "0"
    assert env["OMP_NUM_THREADS"] == "2" and env["PYTHONPATH"].startswith(os.pathsep.join(["a", "m"]))
