"""`collector_paused()`: build a large registry without the cyclic garbage collector's re-scans.

Reading, validating and diffing 10,000 models allocates millions of small objects:
the spec and the state, which live until the command ends, and temporaries (YAML
nodes, rows) that reference counting frees at once. None of it forms garbage cycles.
With the collector running, every burst of allocations triggers collections that
walk all the surviving objects again; at 10,000 models that was a fifth of the
`plan` command's time (bench/plan.py). The stages that build such data pause it;
it resumes (if it was running) as soon as they return, also on an exception.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block; restore it afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
