"""Task executions (the domain record of every background operation), the task catalogue,
pipelines with approval gates, the task backends and the worker that runs the sfp CLI."""
