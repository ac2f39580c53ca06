"""Models of `apps.tasks`; its records arrive with the capability that needs them."""
