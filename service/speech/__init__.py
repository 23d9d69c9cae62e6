"""Speech synthesis: the model service (worker) and the public endpoints (endpoints)."""
