"""Independent references for the audio tests: FFmpeg's loudness meter, decoded by PyAV.

Where a test signal's loudness is not known by construction (synthesized music), the truth is
FFmpeg's own EBU R128 meter — the ``ebur128`` filter, run through PyAV's filter graph — which
shares no code with :mod:`audio.loudness`. It measures at 48 kHz (``aresample`` in front, as the
``ffmpeg`` command line inserts it) and its true peak oversamples that 4×.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


@dataclass(frozen=True)
class Reference:
    integrated_lufs: float
    true_peak_dbtp: float
    #: The largest momentary and short-term values FFmpeg reported (every 100 ms).
    max_momentary_lufs: float = -math.inf
    max_short_term_lufs: float = -math.inf


def ebur128(samples: np.ndarray, rate: int) -> Reference:
    """FFmpeg's measurement of float ``(channels, n)`` samples at ``rate`` Hz."""
    channels = samples.shape[0]
    layout = _LAYOUTS[channels]
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="flt", sample_rate=rate, layout=layout, channels=channels)
    chain = [source, graph.add("aresample", "48000")]
    chain += [graph.add("ebur128", "metadata=1:peak=true"), graph.add("abuffersink")]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    last = None
    maxima = {"M": -math.inf, "S": -math.inf}

    def drain() -> None:
        nonlocal last
        while True:
            try:
                last = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            for name in maxima:
                value = last.metadata.get(f"lavfi.r128.{name}")
                if value is not None:
                    maxima[name] = max(maxima[name], float(value))

    block = rate // 10
    for start in range(0, samples.shape[1], block):
        piece = np.asarray(samples[:, start : start + block], dtype=np.float32)
        interleaved = np.ascontiguousarray(piece.T).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    assert last is not None, "ebur128 gave no frame"
    meta = last.metadata  # the running figures after the last sample: the whole signal's
    return Reference(
        integrated_lufs=float(meta["lavfi.r128.I"]),
        true_peak_dbtp=20 * math.log10(float(meta["lavfi.r128.true_peak"])),
        max_momentary_lufs=maxima["M"],
        max_short_term_lufs=maxima["S"],
    )


def astats(samples: np.ndarray, rate: int) -> list[dict[str, float]]:
    """FFmpeg's ``astats`` figures per channel (``DC_offset``, ``Peak_level``, ``Flat_factor``…)
    of float ``(channels, n)`` samples: an independent reading of the DC offset."""
    channels = samples.shape[0]
    layout = _LAYOUTS[channels]
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="flt", sample_rate=rate, layout=layout, channels=channels)
    chain = [source, graph.add("astats", "metadata=1:reset=0"), graph.add("abuffersink")]
    for before, after in itertools.pairwise(chain):
        before.link_to(after)
    graph.configure()
    last = None
    block = rate // 10
    for start in range(0, samples.shape[1] + block, block):
        if start < samples.shape[1]:
            piece = np.asarray(samples[:, start : start + block], dtype=np.float32)
            interleaved = np.ascontiguousarray(piece.T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            graph.push(frame)
        else:
            graph.push(None)
        while True:
            try:
                last = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
    assert last is not None, "astats gave no frame"
    figures: list[dict[str, float]] = [{} for _ in range(channels)]
    for key, value in last.metadata.items():
        parts = key.split(".")  # lavfi.astats.<channel>.<name>
        if len(parts) == 4 and parts[2].isdigit():
            figures[int(parts[2]) - 1][parts[3]] = float(value)
    return figures


def ebur128_of_file(path: str | Path) -> Reference:
    """FFmpeg's measurement of a file as FFmpeg decodes it (not :mod:`audio.decode`)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        to_float = av.AudioResampler(format="fltp", layout=stream.codec_context.layout)
        blocks = [
            out.to_ndarray()
            for frame in container.decode(stream)
            for out in to_float.resample(frame)
        ]
    return ebur128(np.concatenate(blocks, axis=1), rate)
