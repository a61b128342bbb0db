"""Decode, transcode and measure audio: pure functions over paths and numpy arrays.

Submodules are imported on demand so ``import audio`` stays light.
"""
