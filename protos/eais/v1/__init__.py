"""``eais.v1``: ``agents.proto`` and the Python code generated from it by ``protos/generate.py``."""
