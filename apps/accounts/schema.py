"""OpenAPI description of the bearer authentication: the `access-token` scheme, as published."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BearerAuthentication"
    name = "access-token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT or application token",
            "description": "A session access token (JWT) or an application token (sfp_app_…).",
        }
