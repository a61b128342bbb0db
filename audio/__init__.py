"""Decode, transcode and measure audio: pure functions over paths and numpy arrays.

Submodules are imported on demand so ``import audio`` stays light.

One BLAS thread unless the operator says otherwise: the audio code hands BLAS small blocks (the
true-peak detector's polyphase products, :mod:`audio.true_peak`), where OpenBLAS's extra
threads only spin waiting for work — 60 % more CPU on a 180 s analysis + MP3 (7.2 against
4.5 CPU seconds) and slower too. The parallelism is elsewhere: worker processes, and each
encoder's own thread. Set here, before NumPy loads OpenBLAS (a process that loaded NumPy first
keeps its own setting).
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
