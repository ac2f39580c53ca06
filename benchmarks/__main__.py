"""Run every benchmark, or the ones named, and print figures: `python -m benchmarks [name…]`."""

import importlib
import sys

BENCHMARKS = ["http_stack", "task_queue", "lock_queue", "ws_fanout", "list_scale", "api"]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}")
        module.run()


if __name__ == "__main__":
    main(sys.argv[1:])
