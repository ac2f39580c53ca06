"""REST endpoints of the environments app: the Salesforce org registry."""
