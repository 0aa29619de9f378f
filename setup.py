"""Packaging that pyproject.toml cannot say: the wheel carries configs/ as ``elmo/configs``.

configs/ stays at the top of the checkout, where people edit it; this maps the same files into
the package, so that an installed (not editable) ``elmo-train`` / ``elmo-probe`` finds them
(``elmo/hydra_app.py``). Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_packages, setup

CONFIGS = Path(__file__).resolve().parent / "configs"
# configs/ and each folder below it, as (data-only) packages elmo.configs, elmo.configs.model, ...
CONFIG_PACKAGES = ["elmo.configs"] + [
    ".".join(("elmo.configs", *folder.relative_to(CONFIGS).parts))
    for folder in sorted(CONFIGS.rglob("*"))
    if folder.is_dir()
]

setup(
    packages=[*find_packages(include=["elmo", "elmo.*"]), *CONFIG_PACKAGES],
    package_dir={"elmo.configs": "configs"},
    package_data={"elmo": ["py.typed"], **{package: ["*.yaml"] for package in CONFIG_PACKAGES}},
)
