"""``elmo download NAME [NAME ...]``: fetch published models or data sets into the cache now.

Names are those of ``elmo models``. Each file shows a progress bar, is checked (sha256) and
written atomically; an interrupted download resumes where it stopped when run again. Files
already in the cache are not fetched again. ``ELMO_CACHE`` sets the cache folder,
``ELMO_MIRROR`` a URL prefix to read every file from instead of its public source.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="a published model (elmo-small, ...) or a data set (wikitext2, ...)",
    )


def run(args: argparse.Namespace) -> None:
    from elmo import hub

    unknown = [name for name in args.names if name not in hub.MODELS and name not in hub.DATASETS]
    if unknown:
        raise ValueError(
            f"unknown name(s) {', '.join(unknown)}; models: {', '.join(hub.MODELS)}; "
            f"data sets: {', '.join(hub.DATASETS)}"
        )
    for name in args.names:
        paths = hub.fetch_model(name) if name in hub.MODELS else hub.fetch_dataset(name)
        for path in paths:
            print(f"{name}: {path}")
