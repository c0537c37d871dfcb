"""Benchmarks: the edge runtime against what users would run instead, in one run.

Run from the repository root with ``python -m benchmarks.run`` (needs the
``[train]`` extra); results go to ``benchmarks/results/``.
"""
