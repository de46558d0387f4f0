"""One module per node family; each exports NodeSpec objects for the registry."""
