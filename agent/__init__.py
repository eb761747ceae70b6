"""Host agents: the VM agent and the node agent, and the controller link they share.

- ``controller_link``  register, heartbeat at the controller's pace, watch desired state,
                       report actual state; reconnects with backoff
- ``simulated_fleet``  simulated node and VM agents that speak the real protocol
"""
