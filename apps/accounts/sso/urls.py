"""SSO routes: the SAML SP under `/auth/v1/sso/saml/` and the SSO API under `/sfp/api/`."""

from django.urls import path

from apps.accounts.sso import views

saml_patterns = [
    path("metadata", views.sp_metadata, name="saml-metadata"),
    path("login", views.sp_login, name="saml-login"),
    path("acs", views.acs, name="saml-acs"),
]

api_patterns = [
    path("config", views.ConfigView.as_view(), name="config"),
    path("sso/providers", views.ProvidersView.as_view(), name="sso-providers"),
    path("sso/providers/<uuid:provider_id>", views.ProviderView.as_view(), name="sso-provider"),
    path(
        "sso/providers/<uuid:provider_id>/refresh",
        views.ProviderRefreshView.as_view(),
        name="sso-provider-refresh",
    ),
]
