"""Models of `apps.integrations`; its records arrive with the capability that needs them."""
