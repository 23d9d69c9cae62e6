"""Parts of benchmarks/gpu.py: the multi-process HTTP load generator (load), stand-in
models with random weights (standins), GPU and worker-process probes (probe), and a
stand-in for the lingua package (shims/) used only when lingua is not installed.

A package rather than modules of benchmarks/: `make bench` runs every benchmarks/*.py."""
