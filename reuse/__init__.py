"""The reuse core: stage models, the pure reuse decision, Redis keys and the stage store."""
