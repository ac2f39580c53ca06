"""Salesforce org registry, environments per repository, the lock/lease queue, pools and review
environments."""
