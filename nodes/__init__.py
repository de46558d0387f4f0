"""Nodes: the registry, the shared runner, input handling and one module per family."""
