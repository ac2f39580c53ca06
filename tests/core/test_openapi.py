"""The OpenAPI 3 document is served, validates, and names the bearer scheme `access-token`."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client) -> dict:
    response = api_client.get("/sfp/apidocs-json")
    assert response.status_code == 200
    return response.json()


def test_schema_validates_as_openapi_3(schema):
    assert schema["openapi"].startswith("3.0")
    validate(schema)


def test_schema_identity_and_security_scheme(schema):
    assert schema["info"]["title"] == "sfp server"
    scheme = schema["components"]["securitySchemes"]["access-token"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"


def test_protected_operations_name_the_access_token_scheme(schema):
    assert schema["paths"]["/sfp/api/users/me"]["get"]["security"] == [{"access-token": []}]
    assert "security" not in schema["paths"]["/sfp/api/auth/admin/login"]["post"]


def test_schema_paths_have_no_trailing_slash_and_live_under_the_prefix(schema):
    assert "/sfp/api/ping" in schema["paths"]
    for path in schema["paths"]:
        assert path in ("/sfp/api", "/health") or path.startswith("/sfp/api/")
        assert not path.endswith("/")


def test_health_operations_are_public(schema):
    # As in the published spec: public operations carry no `security` at all.
    for path in ("/health", "/sfp/api", "/sfp/api/ping"):
        assert "security" not in schema["paths"][path]["get"]
    assert schema["paths"]["/sfp/api"]["get"]["operationId"] == "AppController_getHealth"


def test_browsable_docs_are_served_without_a_cdn(api_client):
    response = api_client.get("/sfp/apidocs")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'url: "/sfp/apidocs\\u002Djson"' in page
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page
    bundle = next(
        part.split('"')[0] for part in page.split('src="')[1:] if "swagger-ui-bundle" in part
    )
    asset = api_client.get(bundle)
    assert asset.status_code == 200


def test_schema_generation_has_no_warnings():
    """`manage.py spectacular --validate --fail-on-warn` is what CI of any client would run."""
    from tests.support.servers import clean_environment, manage

    environment = clean_environment(DJANGO_SETTINGS_MODULE="sfpserver.settings.test")
    environment["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/unused"
    result = manage(
        "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null", env=environment
    )
    assert result.returncode == 0, result.stderr
