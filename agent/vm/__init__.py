"""The VM agent (``eais-agent``): registers a CPU VM with the controller and runs its local TensorFlow endpoint.

- ``settings``        typed settings (EAIS_AGENT_*, TOML, credentials file) and the checked identity
- ``identity``        the VM's registration: ids and network from settings, size from psutil
- ``agent``           ``VmAgent``: wires everything; ``start``/``stop``/``run``
- ``attachment``      follows the desired state: idle, attaching (open + prove), serving, detaching
- ``channel``         the channel to a node gateway: open, prove, watch; the view the endpoint acts on
- ``endpoint``        the listener: status query or TensorFlow, by peeking at the first bytes
- ``routing``         forwards or refuses each TensorFlow connection; cuts relays of old views
- ``refusal_server``  gRPC on a unix socket that answers every method UNAVAILABLE + the message
- ``status``          the status JSON and ``eais-agent status``
- ``metrics``         Prometheus metrics, read from the agent when scraped
- ``tf_version``      the VM's TensorFlow version (package metadata) and the major.minor check
- ``cli``             ``eais-agent run`` / ``eais-agent status``
"""
