"""A Dramatiq broker on NATS JetStream, with a dead-letter API.

This package imports nothing else of PhantomChain and could be published on its own.
"""

from broker.backlog import QueueBacklog
from broker.dead_letters import DeadLetter, DeadLetters
from broker.nats_broker import NatsBroker
from broker.sign_in import NatsSignIn, SignInRefused

__all__ = ["DeadLetter", "DeadLetters", "NatsBroker", "NatsSignIn", "QueueBacklog", "SignInRefused"]
