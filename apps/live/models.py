"""Models of `apps.live`; its records arrive with the capability that needs them."""
