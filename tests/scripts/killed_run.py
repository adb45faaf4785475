"""``python tests/scripts/killed_run.py LABEL:EPOCH:STEP ARGS...``: ``aekit ARGS...`` (also under torchrun) that
kills its own process with SIGKILL at one exact moment of training: before step STEP of epoch EPOCH of the
``fit`` whose label is LABEL, or with STEP ``end`` after that epoch's resume state is written to disk. The
resume tests' kill -9 at an exact moment, through the training loop's test seam
(:data:`aekit.training.loop.STEP_HOOKS`)."""

import os
import signal
import sys

from aekit.cli import main
from aekit.training import loop


def kill_at(point: str):
    label, epoch, step = point.rsplit(":", 2)

    def hook(at_label, at_epoch, at_step, state):
        if (at_label, at_epoch, str(at_step)) == (label, int(epoch), step):
            if at_step == "end" and state is not None:
                state.store.flush()  # the epoch's state on disk, as a kill after its write would leave it
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


if __name__ == "__main__":
    loop.STEP_HOOKS.append(kill_at(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
