"""Reads behind the dashboard's lock board, bounded to what one page shows.

Task pages read executions through the tasks app's own selectors (`apps.tasks.selectors`), so the
dashboard shows exactly what the API answers.
"""

from apps.environments.selectors.environments import environment_lock_states, environments_filtered

LOCK_BOARD_ENVIRONMENTS = 200


def lock_board() -> list[dict]:
    """Every environment (up to LOCK_BOARD_ENVIRONMENTS) with its lock holder and queue."""
    environments = environments_filtered()[:LOCK_BOARD_ENVIRONMENTS]
    statuses = environment_lock_states(environments)
    return [
        {"environment": environment, "lock": statuses[environment.pk]}
        for environment in environments
    ]
