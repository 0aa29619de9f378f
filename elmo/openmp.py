"""How long torch's OpenMP threads spin while they wait: briefly, so that a busy machine is shared.

torch's CPU build runs its parallel regions (and MKL's) on GNU OpenMP (libgomp). Between regions
a waiting thread spins for ``GOMP_SPINCOUNT`` iterations before it sleeps: 300,000 by default,
milliseconds of a core. Alone on the machine that spinning is free. Beside other CPU-bound
processes it is not: a thread spins on a core the scheduler could give to the thread it waits
for, or to the other process, and every barrier waits for a descheduled thread. The README's
main job took 3.7x as long beside one busy process, where its fair share is 1.5x
(docs/benchmarks.md, "On a busy machine"). A spin of 1,000 iterations (microseconds) keeps
almost all of the speed alone (a thread woken within the spin still skips the sleep) and brings
the busy-machine slowdown to its fair share; ``OMP_WAIT_POLICY=PASSIVE`` (no spin) was fair too
but slower alone. ``scripts/bench_busy.py`` measures both.

libgomp reads the setting once, when it is loaded (with torch), so it is made before torch is
imported, and only when the user has set neither ``GOMP_SPINCOUNT`` nor ``OMP_WAIT_POLICY``, nor
``ELMO_OPENMP_DEFAULTS=1`` (keep libgomp's own defaults).
"""

from __future__ import annotations

import os
import sys

SPIN_COUNT = "1000"  # iterations; scripts/bench_busy.py chose it (module docstring)
USER_SETTINGS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
KEEP_DEFAULTS = "ELMO_OPENMP_DEFAULTS"
added = False  # whether this process's environment holds GOMP_SPINCOUNT because of us


def share_cores_when_busy() -> bool:
    """Set ``GOMP_SPINCOUNT`` for this process (and its children) unless it is too late (torch
    already imported) or the user chose otherwise. -> whether it was set."""
    if "torch" in sys.modules or os.environ.get(KEEP_DEFAULTS) == "1":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    global added
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    added = True
    return True
