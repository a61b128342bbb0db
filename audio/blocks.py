"""The blocks every streaming measurement is fed: float32 ``(channels, n)``."""

from __future__ import annotations

import numpy as np


def channel_block(block: np.ndarray, channels: int) -> np.ndarray:
    """``block`` as float32 ``(channels, n)`` (a mono 1-D block gets its channel axis).

    :raises ValueError: the block has another number of channels.
    """
    block = np.atleast_2d(np.asarray(block, dtype=np.float32))
    if block.shape[0] != channels:
        raise ValueError(f"expected {channels} channels, got {block.shape[0]}")
    return block
