"""Settings package.

`base` is the one settings module the server runs with; it reads every value from the environment
through the single `env` object in `sfpserver.env` and pulls in one module per optional
integration. `test` layers test-only defaults on top of it.
"""
