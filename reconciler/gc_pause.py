"""`collector_paused()`: build a large registry without the cyclic garbage collector's re-scans.

Reading, validating and diffing 10,000 models allocates millions of small objects:
the spec and the state, which live until the command ends, and temporaries (YAML
nodes, rows) that reference counting frees at once. None of it forms garbage cycles.
With the collector running, every burst of allocations triggers collections that
walk all the surviving objects again; at 10,000 models that was a fifth of the
`plan` command's time (bench/plan.py). The stages that build such data pause it;
it resumes (if it was running) as soon as they return, also on an exception.

Pausing only defers the cost, though: objects made while the collector is paused are
all "young" when it resumes, and the next collections walk them again. So the
`llm-registry` process itself, a one-shot command that frees its data by exiting, runs
with the collector off from the start (`for_one_shot_process`), as bench/plan.py's
floor does; `serve`, the one long-running command, turns it back on. In-process callers
(tests, the library) keep the collector and get the pauses. The price is the memory of
the few cycles, held until exit: `llm-registry test` of 1,000 models (LiteLLM's clients
make some) peaked at 242 MB instead of 225 MB, and took 5.4 s instead of 7.4 s.

At exit, the interpreter still runs full collections (the collector off or not), as it
tears the modules down: they walk every object still alive (the modules, pydantic's
validators, the command's data), and the operating system frees that memory anyway.
For `validate` that walk was 15-20 ms of CPU, a sixth of the command (bench/startup.py).
So a one-shot process freezes (`gc.freeze`) what is alive when it exits.
"""

from __future__ import annotations

import atexit
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


def for_one_shot_process() -> None:
    """Turn the cyclic collector off for the rest of this process (the console script's entry calls it).

    Reference counting still frees everything that is not a cycle, which is nearly all a
    command allocates; the few cycles (a traceback, a client library's bookkeeping) are
    left to the process's exit. There, after the atexit handlers registered later have
    run (files, connections and logging are closed by their owners, never by the
    collector), `gc.freeze()` spares those final collections, which would only walk memory
    the operating system is about to free.
    """
    gc.disable()
    atexit.register(gc.freeze)


def for_long_running_process() -> None:
    """Turn the cyclic collector back on (`serve`, which runs until stopped), and the exit's collection."""
    atexit.unregister(gc.freeze)
    gc.enable()
