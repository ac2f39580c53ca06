"""API clients for tests: a DRF client that sends a bearer token, as the CLI and CI do."""

from rest_framework.test import APIClient


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
