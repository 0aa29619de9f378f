"""``elmo models``: the published models and the data sets known by name, and which are cached.

A name works wherever a model or data set is expected (``--model elmo-small``,
``ElmoEmbedder.from_pretrained("elmo-original")``, ``elmo-train init_from=elmo-small``,
``data=wikitext2``); it is downloaded into the cache on first use, or with ``elmo download NAME``.
Settings: ``ELMO_CACHE`` (the cache folder), ``ELMO_OFFLINE=1``, ``ELMO_MIRROR`` (elmo.hub).
"""

from __future__ import annotations

import argparse

from elmo.commands.table import print_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> None:
    from elmo import hub

    print(f"published models (cache: {hub.cache_dir()})")
    models = [
        [model.name, f"{model.parameters_millions:.1f}M", f"{model.download_mb} MB",
         "yes" if hub.cached_model(model) else "no", model.description]
        for model in hub.MODELS.values()
    ]  # fmt: skip
    print_table(["name", "parameters", "download", "cached", "description"], models, right={1, 2})
    print()
    print("data sets (./data and ../shared/data are read first; the cache after them)")
    data_sets = [
        [data_set.name, f"{data_set.download_mb:.1f} MB",
         "yes" if hub.cached_dataset(data_set) else "no", data_set.license, data_set.description]
        for data_set in hub.DATASETS.values()
    ]  # fmt: skip
    print_table(["name", "download", "cached", "license", "description"], data_sets, right={1})
