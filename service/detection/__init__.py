"""Object detection: the model service (worker) and the public endpoints (endpoints)."""
