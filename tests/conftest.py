"""Shared fixtures. Lab tests (tests/lab/) need `make run` (make test does it)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
