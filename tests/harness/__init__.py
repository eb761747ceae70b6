"""Test harness pieces every suite of the data plane shares.

- ``waiting``   ``eventually``: poll a condition with a bound, fail naming what was awaited
- ``daemons``   an agent (``eais-node run``, ``eais-agent run``) as a real child process: its lines,
                SIGKILL and restart, and its threads, descriptors and memory for leak checks
"""
