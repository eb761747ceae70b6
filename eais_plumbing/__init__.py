"""Plumbing the controller, both agents and ``remote_tf`` share, and nothing else.

- ``service_notify``   tell systemd a daemon is ready, alive (watchdog) or stopping (``sd_notify``)
- ``endpoint_status``  the status question a VM agent's local TensorFlow endpoint answers, and how to ask it
- ``settings_loader``  typed settings from flags > environment > TOML file > defaults, and the
                       placeholder check every secret goes through
- ``metrics_server``   the Prometheus ``/metrics`` listener a daemon starts with ``--metrics-port``
"""
