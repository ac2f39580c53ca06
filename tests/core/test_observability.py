"""Request ids, the access log line and Prometheus metrics."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_request_id(api_client):
    first = api_client.get("/sfp/api/ping")["X-Request-ID"]
    second = api_client.get("/sfp/api/ping")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_a_sane_incoming_request_id_is_kept(api_client):
    response = api_client.get("/sfp/api/ping", HTTP_X_REQUEST_ID="trace-abc.123")
    assert response["X-Request-ID"] == "trace-abc.123"


def test_an_unsafe_incoming_request_id_is_replaced(api_client):
    response = api_client.get("/sfp/api/ping", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"


def test_error_responses_carry_the_request_id(api_client):
    response = api_client.get("/sfp/api/nope")
    assert response.status_code == 404
    assert response["X-Request-ID"]


def test_metrics_expose_view_latency_and_database_queries(api_client):
    api_client.get("/health")
    response = api_client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_latency_seconds_by_view_method" in text
    assert 'view="health"' in text
    assert "django_db_execute_total" in text


@override_settings(SFP_METRICS_TOKEN="scrape-me")
def test_metrics_can_require_a_token(api_client):
    assert api_client.get("/metrics").status_code == 401
    assert api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    allowed = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert allowed.status_code == 200
