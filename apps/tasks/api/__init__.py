"""REST endpoints of the tasks app: tasks and their logs."""
