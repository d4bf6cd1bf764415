"""A real agent process for the tests: ``agent_script.py SWEEP_ID BEHAVIOUR COUNT``.

The store is ``MLTRAIL_TRACKING_URI``. BEHAVIOUR is what each trial's function does:
``quick`` logs ``loss = x`` (from the trial's config) over 3 steps after a short
pause; ``hang`` logs once, then sleeps for a minute (the test kills the process).
COUNT 0 runs until the sweep is done. Prints one line per trial it ran. With
``SWEEP_TEST_GATE`` (a folder) set, it writes ``ready-PID`` there and starts only once
the file ``go`` appears, so that several agents start at the same moment.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import mltrail


def quick() -> None:
    run = mltrail.init()
    x = float(run.config.get("x", 0))
    for step in range(3):
        time.sleep(0.02)
        run.log({"loss": x + step})


def hang() -> None:
    run = mltrail.init()
    run.log({"loss": 1.0})
    run.flush()
    time.sleep(60)


if __name__ == "__main__":
    sweep_id, behaviour, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    function = {"quick": quick, "hang": hang}[behaviour]
    gate = os.environ.get("SWEEP_TEST_GATE")
    if gate:
        (Path(gate) / f"ready-{os.getpid()}").touch()
        while not (Path(gate) / "go").exists():
            time.sleep(0.01)
    for trial in mltrail.agent(sweep_id, function=function, count=count or None):
        print("TRIAL", trial.number, trial.status, trial.run_id, flush=True)
