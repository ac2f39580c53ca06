"""Every 4xx/5xx on /sfp/* answers in one JSON shape, never HTML, never a traceback."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]


def assert_error_body(response, status_code: int, error: str) -> dict:
    assert response.status_code == status_code
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["statusCode"] == status_code
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_unknown_route_is_404_in_error_shape(api_client):
    body = assert_error_body(api_client.get("/sfp/api/nope"), 404, "Not Found")
    assert body["message"] == "Cannot GET /sfp/api/nope"


def test_unknown_route_outside_api_prefix_but_under_sfp(api_client):
    assert_error_body(api_client.delete("/sfp/whatever/else"), 404, "Not Found")


def test_trailing_slash_is_not_redirected(api_client):
    response = api_client.get("/sfp/api/ping/")
    assert_error_body(response, 404, "Not Found")


def test_wrong_method_is_405_with_allow_header(api_client):
    response = api_client.post("/sfp/api/ping", {}, format="json")
    body = assert_error_body(response, 405, "Method Not Allowed")
    assert "POST" in body["message"]
    assert "GET" in response["Allow"]


def test_validation_error_is_400_with_field_details(api_client):
    response = api_client.post("/sfp/api/test/validate", {"name": "x" * 20}, format="json")
    body = assert_error_body(response, 400, "Bad Request")
    assert set(body["details"]) == {"name", "count"}
    assert "name:" in body["message"] and "count:" in body["message"]


def test_malformed_json_is_400(api_client):
    response = api_client.generic(
        "POST", "/sfp/api/test/validate", "{not json", content_type="application/json"
    )
    assert_error_body(response, 400, "Bad Request")


def test_unauthenticated_is_401_with_challenge(api_client):
    response = api_client.get("/sfp/api/test/protected")
    assert_error_body(response, 401, "Unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/sfp/api/test/crash", "/sfp/api/test/django-crash"])
def test_unhandled_exception_is_500_without_leaking(path):
    client = Client(raise_request_exception=False)
    response = client.get(path)
    body = assert_error_body(response, 500, "Internal Server Error")
    assert body["message"] == "Internal server error"
    text = response.content.decode()
    assert "hunter2" not in text and "sfp_app_abc" not in text and "Traceback" not in text


def test_pages_outside_the_api_keep_html_errors(api_client):
    response = api_client.get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_error_bodies_keep_the_security_headers(api_client):
    response = api_client.get("/sfp/api/nope")
    assert response["X-Content-Type-Options"] == "nosniff"
