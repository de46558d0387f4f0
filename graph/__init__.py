"""The Ray Serve graph: ingress, stage store, callback sender and node deployments."""
