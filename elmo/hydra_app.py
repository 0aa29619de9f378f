"""What the Hydra entry points (``elmo.train``, ``elmo.probe``) share.

* ``CONFIGS``: where the YAML configs live (users add their own folder with ``--config-dir``);
* ``store_schemas``: puts the dataclass schemas into Hydra's ConfigStore, so that a YAML defaults
  list can name them; each entry point calls it from ``main()``, never at import time;
* ``exit_on_error``: a bad value becomes one line on stderr and exit code 2, not a traceback.

Only these three modules import Hydra; the rest of ``elmo`` sees plain dataclasses.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore


def _config_folder() -> Path:
    """The YAML configs: the copy an installed wheel carries as package data (``elmo/configs``,
    put there by setup.py), else ``configs/`` of the checkout this package runs from (editable)."""
    package = Path(__file__).resolve().parent
    installed = package / "configs"
    return installed if installed.is_dir() else package.parent / "configs"


CONFIGS = _config_folder()


def store_schemas(schemas: Mapping[str, Any], group: str | None = None) -> None:
    """Register each schema (a dataclass or a config node) in Hydra's ConfigStore by name.

    Storing a name again replaces it, so calling this more than once is harmless.
    """
    store = ConfigStore.instance()
    for name, node in schemas.items():
        store.store(name=name, node=node, group=group)


@contextlib.contextmanager
def exit_on_error(program: str, *errors: type[Exception]) -> Iterator[None]:
    """Turn ``errors`` (ValueError if none given) raised inside into one line and exit code 2.

    Use it inside the ``@hydra.main`` function: Hydra reports an exception escaping from there as
    its own error with exit code 1, but lets SystemExit through.
    """
    caught = errors or (ValueError,)
    try:
        yield
    except caught as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
