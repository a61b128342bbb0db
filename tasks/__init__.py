"""Dramatiq actors: the processing pipeline of an upload, on :class:`broker.NatsBroker`."""
