"""Background work: the outbox relay, message handlers, debounced stock pushes, the sweep, the worker.

Every piece of work that must reach another system is an OutboxMessage written in the same
transaction as the change that caused it. RQ (on Redis) only carries message ids: if Redis loses a
job, the sweep finds the message still pending in the database and queues it again.
"""
