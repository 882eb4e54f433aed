"""Benchmarks through a real lab (Asterisk + PostgreSQL + cc_ari), each on its OWN lab instance.

`python -m bench.soak` (`make bench-soak`): minutes of mixed calls, then what was left behind
(missing rows, open calls, stuck agents, leaked channels) and the service's RSS slope.
`python -m bench.lab` (`make bench-lab`): cc_ari's cost per answered call against Asterisk's
native Queue() on the same Asterisk, alternating phases.

Both start a second lab (`scripts/lab.py run` with CC_LAB_DIR=.lab-bench and every port moved,
by default +200) and stop it at the end, so the main lab and the tests are never touched. They
print figures and assert nothing.
"""
