"""Suite-wide fixtures: an API client and the factories of every app."""

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()
