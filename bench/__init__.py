"""Micro-benchmarks of cc_ari's pure cores (stdlib only): `python -m bench [--quick]`.

Each figure comes with a baseline measured in the same run, interleaved with it, and the ratio
of the two. See bench/__main__.py for the command line.
"""
