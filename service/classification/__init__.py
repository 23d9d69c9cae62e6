"""Image classification: the model service (worker) and the public endpoint (endpoints)."""
