"""The benchmark harness: ``python -m benchmarks run [--quick | --size 100k | --size 1m] [--cases a,b,...]``.

Every figure is measured next to a peer run side by side in the same run (numpy, hnswlib, Chroma,
a plain COPY, the model alone, the /healthz round trip) and reported as a ratio. Results land in
benchmarks/results/<date>-<size>.json (not committed) and the tables of benchmarks/RESULTS.md.
"""
