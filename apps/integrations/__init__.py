"""The credential vault, integration records and provider clients (GitHub, Azure DevOps,
Salesforce), task-scoped credential grants and webhooks."""
