"""Model runtimes: load pretrained weights from a source, pre-process, run a batch,
post-process. Plain Python + torch; nothing here knows HTTP or BentoML."""
