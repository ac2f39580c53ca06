"""The sfp server Django project: settings, root URL map and the ASGI/WSGI entry points."""
