"""Models of `apps.environments`; its records arrive with the capability that needs them."""
