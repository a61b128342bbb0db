"""Signals, synthesized music and independent references (oracles) for the audio tests and
the benches."""
