"""gRPC contracts between the controller and its agents (package ``eais.v1``); see ``generate.py``."""
