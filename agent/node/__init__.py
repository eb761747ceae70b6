"""The node agent (``eais-node``): offers a GPU server's slices and runs one TensorFlow worker per attachment.

- ``settings``         typed settings (EAIS_NODE_*, TOML), every timing in ``NodeTimings``
- ``inventory``        GPUs through NVML (``Nvml``), or the CPU backend, reported as what it is
- ``slicing``          each GPU carved into a fixed partition of instance-type slices; stable local ids
- ``preflight``        what is settled before talking to anyone: plan, token, isolation, leftovers
- ``registration``     the NodeRegistration: slices, backend, TF version, gateway address and CSR
- ``agent``            ``NodeAgent``: wires everything; ``start``/``wait_ready``/``stop``
- ``slices``           ``SliceRunner``: one thread per slice, reconciling desired against actual
- ``worker``           the TensorFlow workers: warm pool, processes, launch, records, probe, observer,
                       and ``worker.served``, a worker bound to one attachment
- ``netns``            private network namespaces and sockets made inside them
- ``gateway``          the TLS listener: hello, token check, relay into the worker's namespace
- ``gateway_certificate`` its certificate, signed by the controller, renewed before it expires
- ``metrics``          Prometheus metrics, read from the agent when scraped
- ``cli``              ``eais-node run`` / ``eais-node inventory``

Actual state goes to the controller through :mod:`agent.actual_state_reporter`, as for the VM agent.
"""
