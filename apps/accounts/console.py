"""The operators' console: the Django admin site, open to active owners only.

Access is decided by the owner role read from the database on each request, so demoting an
owner closes the console to them at once. Signing in goes through the dashboard's login, which
has the API's throttling and audit; the admin's own password form is never offered.
`ConsoleAdminConfig` installs it as the default site.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import render
from django.urls import reverse


class ConsoleSite(admin.AdminSite):
    site_header = "sfp server console"
    site_title = "sfp server"
    index_title = "Operations"

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(user.is_active and getattr(user, "is_owner", False))

    def login(self, request, extra_context=None):
        from django.contrib.auth.views import redirect_to_login  # needs the app registry

        if request.user.is_authenticated:  # signed in, but not an owner: no redirect loop
            return render(
                request,
                "dashboard/forbidden.html",
                {"message": "The console is for owners.", "principal": None},
                status=403,
            )
        next_url = request.GET.get("next") or reverse("admin:index")
        return redirect_to_login(next_url, login_url=reverse("dashboard:login"))


class ConsoleAdminConfig(AdminConfig):
    default_site = "apps.accounts.console.ConsoleSite"
