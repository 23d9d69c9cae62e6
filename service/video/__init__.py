"""Video analysis: the video service (worker: decodes, samples, sends frames to the model
services) and the public endpoint (endpoints)."""
