"""Models of `apps.projects`; its records arrive with the capability that needs them."""
