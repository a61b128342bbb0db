"""What the tests and the benches share: the servers and deployments they start, the clients
they call the service with, waiting on events, and the signal and music generators whose truth
is known by construction (``audio/``).

Nothing here is a test; everything here is imported, never collected.
"""
