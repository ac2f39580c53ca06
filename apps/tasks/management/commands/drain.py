"""`manage.py drain`: stop dispatching new work and wait for in-flight tasks (before an update).

Workers stay up but claim nothing while dispatch is paused; `--resume` lets them claim again.
Progress is printed until nothing is active or `--timeout` passes (exit code 1 then).
"""

import time

from django.core.management.base import BaseCommand, CommandError

from apps.tasks.models import DispatchState, TaskExecution, TaskStatus


class Command(BaseCommand):
    help = "Pause dispatch and wait for in-flight tasks to finish (or --resume dispatch)."

    def add_arguments(self, parser):
        parser.add_argument("--resume", action="store_true", help="Let workers claim work again.")
        parser.add_argument("--timeout", type=float, default=3600.0)
        parser.add_argument("--interval", type=float, default=2.0)

    def handle(self, *args, resume: bool, timeout: float, interval: float, **options):
        if resume:
            DispatchState.set_paused(False)
            self.stdout.write(self.style.SUCCESS("Dispatch resumed."))
            return
        DispatchState.set_paused(True)
        self.stdout.write("Dispatch paused: workers take no new work.")
        deadline = time.monotonic() + timeout
        while True:
            active = TaskExecution.objects.filter(status=TaskStatus.ACTIVE).count()
            if not active:
                self.stdout.write(self.style.SUCCESS("Drained: no task is running."))
                return
            if time.monotonic() > deadline:
                raise CommandError(f"{active} task(s) still running after {timeout:.0f} s")
            self.stdout.write(f"Waiting for {active} running task(s)…")
            self.stdout.flush()
            time.sleep(interval)
