"""The VM agent's channel to a node gateway: opened, proven, watched, and what the endpoint says about it.

- ``gateway``   TLS to a node gateway, verified against the agent CA, and the hello
- ``proof``     one GetStatus round trip to the worker through a fresh channel
- ``opener``    the background attempts of one attachment, with backoff and give-up
- ``view``      the immutable view of what the endpoint does, and its messages
"""
