"""REST endpoints of the integrations app: integrations, their credentials, grant redemption."""
