"""Namespace of the ``eais`` protobuf packages."""
