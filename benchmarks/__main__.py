"""Run every benchmark, or the ones named, and print figures: `python -m benchmarks [name…]`.

Each benchmark runs in a process of its own: most set Django up against their own scratch
database, and Django's settings (and connections) are once per process.
"""

import importlib
import subprocess
import sys

BENCHMARKS = ["http_stack", "task_queue", "lock_queue", "ws_fanout", "list_scale", "api"]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    if len(names) == 1:
        module = importlib.import_module(f"benchmarks.{names[0]}")
        print(f"== {names[0]}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        module.run()
        return
    failed = []
    for name in names or BENCHMARKS:
        if subprocess.run([sys.executable, "-m", "benchmarks", name]).returncode != 0:
            failed.append(name)
    if failed:
        raise SystemExit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
