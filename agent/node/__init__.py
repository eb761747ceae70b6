"""The node agent (``eais-node``): offers a GPU server's slices and runs one TensorFlow worker per attachment.

- ``settings``         typed settings (EAIS_NODE_*, TOML), every timing in ``NodeTimings``
- ``inventory``        GPUs through NVML (``Nvml``), or the CPU backend, reported as what it is
- ``slicing``          each GPU carved into a fixed partition of instance-type slices; stable local ids
- ``preflight``        what is settled before talking to anyone: plan, token, isolation, leftovers
- ``registration``     the NodeRegistration: slices, backend, TF version, gateway address and CSR
- ``agent``            ``NodeAgent``: wires everything; ``start``/``wait_ready``/``stop``
- ``slices``           ``SliceRunner``: one thread per slice, reconciling desired against actual
- ``served_worker``    a worker bound to one attachment: bring-up, proof, relays, stop + memory check
- ``worker_pool``      warm workers started ahead of attaches, refilled after each take
- ``worker_process``   one worker process: spawn into its sandbox, events, connect, kill (pidfd)
- ``worker_launch``    command, scrubbed environment, and a uid per worker
- ``worker_records``   pids on disk, so a restarted agent kills the workers it left
- ``worker_probe``     the GetStatus round trip that proves a worker READY
- ``worker_observer``  memory still held? usage figures (NVML, psutil)
- ``netns``            private network namespaces and sockets made inside them
- ``gateway``          the TLS listener: hello, token check, relay into the worker's namespace
- ``reporter``         the whole picture to the controller, on change and periodically
- ``cli``              ``eais-node run`` / ``eais-node inventory``

The worker side is :mod:`remote_tf.worker` (with :mod:`remote_tf.worker_sandbox`).
"""
