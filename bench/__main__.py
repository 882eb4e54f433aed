"""`python -m bench [--quick] [--only NAME ...]`: figures for cc_ari's pure cores, each with a
baseline measured in the same run and the ratio. Stdlib only; timer: time.perf_counter."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import ari, cel, ivr, routing

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~3 s run with fewer repetitions (default ~30 s)")
    parser.add_argument("--only", action="append", choices=["assign", "ivr", "ari", "cel"],
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data (default 1)")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "cc_ari.toml",
                        help="call-flow file for the IVR benchmark (default config/cc_ari.toml)")
    args = parser.parse_args(argv)

    benches: dict[str, Callable[[], str]] = {
        "assign": lambda: routing.run(quick=args.quick, seed=args.seed),
        "ivr": lambda: ivr.run(quick=args.quick, seed=args.seed, config=args.config),
        "ari": lambda: ari.run(quick=args.quick, seed=args.seed),
        "cel": lambda: cel.run(quick=args.quick, seed=args.seed),
    }
    chosen = [name for name in benches if not args.only or name in args.only]
    print(f"cc_ari benchmarks: {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{'quick' if args.quick else 'full'} run, seed {args.seed}")
    print("timer time.perf_counter; one warm-up call each; subject and baseline interleaved; "
          "gc off while timing\n", flush=True)
    started = time.perf_counter()
    for name in chosen:
        t0 = time.perf_counter()
        print(benches[name]())
        print(f"  ({time.perf_counter() - t0:.1f} s)\n", flush=True)
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
