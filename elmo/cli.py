"""The ``elmo`` command: ``elmo embed``, ``elmo eval``, ... (``elmo --help`` lists them).

Library code raises; this entry point alone turns errors into messages and exit codes:
a bad input or argument prints one line on stderr and exits with status 2; Ctrl-C (SIGINT) exits
with 130 and SIGTERM with 143, both after the ``finally`` blocks have run (a command's
half-written output file is deleted, not left behind).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from elmo import __version__
from elmo.commands import (
    download,
    embed,
    evaluate,
    models,
    neighbours,
    senses,
    substitutes,
)

COMMANDS = {
    "embed": (embed, "ELMo vectors of every line of a text file, as HDF5"),
    "eval": (evaluate, "perplexity of a trained model on a text file"),
    "substitutes": (substitutes, "words that fit a marked position, from both language models"),
    "neighbours": (neighbours, "corpus occurrences nearest to a word in context"),
    "senses": (senses, "cluster and plot every occurrence of a word in a corpus"),
    "models": (models, "the published models and data sets known by name, and which are cached"),
    "download": (download, "fetch published models or data sets into the cache"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elmo", description="ELMo: deep contextualized word representations")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _signals_raise():
            args.run(args)
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        print(f"elmo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"elmo {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"elmo {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    return 0


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so that its ``finally`` blocks run.

    A BaseException, as KeyboardInterrupt: no ``except Exception`` on the way swallows it.
    """


_SIGNALLED: list[BaseException] = []  # what a SIGINT or SIGTERM raised, for raise_if_signalled


def raise_if_signalled() -> None:
    """Raise again what SIGINT (``KeyboardInterrupt``) or SIGTERM (``Terminated``) raised. The
    handler raises it at once, but an exception raised where Python cannot pass it on (a
    ``__del__``, a weakref callback: "Exception ignored in ...") is lost; long loops call this
    between steps so that the signal still ends them."""
    if _SIGNALLED:
        raise _SIGNALLED[-1]


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Within: SIGTERM raises ``Terminated`` (Python's default would end the process at once,
    leaving temporary files behind) and SIGINT ``KeyboardInterrupt``, both remembered for
    ``raise_if_signalled``. Only the main thread can set a handler; elsewhere (a caller's
    thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame) -> None:
        _SIGNALLED.append(Terminated())
        raise Terminated

    def interrupt(signum, frame) -> None:
        _SIGNALLED.append(KeyboardInterrupt())
        raise KeyboardInterrupt

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, terminate),
                signal.SIGINT: signal.signal(signal.SIGINT, interrupt)}  # fmt: skip
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _SIGNALLED.clear()


if __name__ == "__main__":
    # `python -m elmo.cli` runs this file as __main__, a second copy of the module: run the
    # elmo.cli copy, whose _SIGNALLED the commands' raise_if_signalled reads (with this copy's
    # handlers, a signal whose exception was lost was never seen again).
    from elmo.cli import main as cli_main

    sys.exit(cli_main())
