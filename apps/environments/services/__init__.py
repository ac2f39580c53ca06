"""Writes of the environments app, one module per sub-domain: orgs, environments, locks."""
