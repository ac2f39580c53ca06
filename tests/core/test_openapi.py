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


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_operation_has_a_summary_its_roles_and_its_error_statuses(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        responses = operation["responses"]
        expected = {"400"}
        if operation["x-roles"]:
            assert "Roles: " + ", ".join(operation["x-roles"]) in operation["description"], where
            expected |= {"401", "403", "404"}
        else:
            assert "security" not in operation, where
        if "{" in path:
            expected.add("404")
        if method in ("post", "put", "patch", "delete"):
            expected.add("409")
        if "requestBody" in operation:
            expected.add("413")
            assert "example" in operation["requestBody"]["content"]["application/json"], where
        assert expected <= set(responses), (where, sorted(responses))
        for status in expected:
            assert responses[status]["content"]["application/json"]["schema"] == error, where
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {
        "statusCode",
        "message",
        "error",
    }


def test_roles_are_the_views_declarations(schema):
    tokens = schema["paths"]["/sfp/api/application-tokens"]
    assert tokens["post"]["x-roles"] == ["owner"]
    assert schema["paths"]["/sfp/api/locks"]["post"]["x-roles"] == ["owner", "application"]
    assert schema["paths"]["/sfp/api/ping"]["get"]["x-roles"] == []
    login = schema["paths"]["/sfp/api/auth/admin/login"]["post"]["responses"]
    assert login["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_internal_routes_are_not_published(schema):
    assert not [path for path in schema["paths"] if "/internal/" in path]


def test_task_submit_has_one_schema_per_task_type_discriminated_by_type(schema):
    from apps.tasks.catalogue import OPERATIONS

    components = schema["components"]["schemas"]
    body = schema["paths"]["/sfp/api/tasks"]["post"]["requestBody"]["content"]["application/json"]
    submit = components[body["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert submit["discriminator"]["propertyName"] == "type"
    mapping = submit["discriminator"]["mapping"]
    assert set(mapping) == set(OPERATIONS)
    for name, reference in mapping.items():
        per_type = components[reference.rsplit("/", 1)[-1]]
        type_enum = components[per_type["properties"]["type"]["$ref"].rsplit("/", 1)[-1]]
        assert type_enum["enum"] == [name]
        data = components[per_type["properties"]["data"]["$ref"].rsplit("/", 1)[-1]]
        declared = OPERATIONS[name].input_serializer()
        assert set(data.get("properties", {})) == set(declared.fields)


def test_environment_list_is_a_list_or_grouped_by_category(schema):
    components = schema["components"]["schemas"]
    response = schema["paths"]["/sfp/api/environments"]["get"]["responses"]["200"]
    listed = components[response["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    shapes = listed["oneOf"]
    assert shapes[0]["type"] == "array"
    grouped = components[shapes[1]["$ref"].split("/")[-1]]
    assert set(grouped["properties"]) == {"dev", "test", "snapshot", "release"}
    assert all(group["type"] == "array" for group in grouped["properties"].values())
