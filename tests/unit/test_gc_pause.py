"""The cyclic collector: paused around large builds in process, off for the one-shot CLI process."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from reconciler.gc_pause import collector_paused


def test_collector_paused_disables_and_restores_also_on_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_collector_paused_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "calls, expected",
    [
        ("gc_pause.for_one_shot_process()", "False True"),  # off, and what is alive is frozen at exit
        ("gc_pause.for_one_shot_process(); gc_pause.for_long_running_process()", "True False"),  # serve: on, no freeze
    ],
)
def test_a_one_shot_process_runs_without_the_collector_and_serve_turns_it_back_on(calls: str, expected: str) -> None:
    # In a process of its own (the test process keeps its collector); the exit handlers are
    # run by hand so that their effect can be printed.
    code = (
        "import atexit, gc\n"
        "from reconciler import gc_pause\n"
        f"{calls}\n"
        "enabled = gc.isenabled()\n"
        "atexit._run_exitfuncs()\n"
        "print(enabled, gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == expected


def test_the_console_script_entry_turns_the_collector_off() -> None:
    code = (
        "import gc, sys\n"
        "from reconciler import cli\n"
        "sys.argv = ['llm-registry', '--version']\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.isenabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"
