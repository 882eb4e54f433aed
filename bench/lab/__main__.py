"""`python -m bench.lab`: cc_ari vs Asterisk's native Queue(), cost per answered call (bench/lab/cost.py)."""

import sys

from bench.lab.cost import main

sys.exit(main())
