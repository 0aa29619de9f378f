"""Command-line subcommands of ``elmo`` (argparse; training is ``elmo-train``, with Hydra)."""
