"""Host agents: the VM agent and the node agent, and the controller link they share.

- ``controller_link``  register, heartbeat at the controller's pace, watch desired state,
                       report actual state; reconnects with backoff
- ``controller_trust`` the controller's agent CA (TLS) or an explicit plaintext choice, and why a
                       handshake with the controller fails when it does
- ``simulated_fleet``  simulated node and VM agents that speak the real protocol
"""
