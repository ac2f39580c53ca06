"""The operators' console: the Django admin site, open to active owners only.

Access is decided by the owner role read from the database on each request, so demoting an
owner closes the console to them at once. `ConsoleAdminConfig` installs it as the default site.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class ConsoleSite(admin.AdminSite):
    site_header = "sfp server console"
    site_title = "sfp server"
    index_title = "Operations"

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(user.is_active and getattr(user, "is_owner", False))


class ConsoleAdminConfig(AdminConfig):
    default_site = "apps.accounts.console.ConsoleSite"
