"""Schemathesis against the app in-process (WSGI, no network): every operation of the public
OpenAPI document, as an owner with a bearer token and anonymously, every check schemathesis has.

The document is generated the way `/sfp/apidocs-json` serves it; requests run inside the test's
transaction (Django's request signals that would close the connection are held off, as Django's
own test client does). The seed is fixed and generation derandomised, so a failure reproduces;
`SFP_SCHEMATHESIS_EXAMPLES` raises the examples per operation for a longer local run.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, seed, settings

from apps.accounts.models import TeamRole
from tests.accounts.factories import TeamFactory, access_token_for, make_member

SEED = 20261213
EXAMPLES = int(os.environ.get("SFP_SCHEMATHESIS_EXAMPLES", "3"))

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()


@pytest.fixture
def _in_test_transaction():
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Known gap (issue #13 point 3, open): as an owner, 20 operations still fail a check (lock routes
# answering an undocumented 405, three invalid bodies accepted, fourteen valid-looking requests
# refused by rules the document does not state yet). They run and show as xfailed, not hidden.
OWNER_KNOWN_FAILURES = pytest.mark.xfail(
    reason="issue #13.3: owner cases the document does not describe truthfully yet", strict=False
)


# Known gap (issue #13 point 1, open): `repository` is a `path:` parameter, so some values of
# these lock routes resolve to another view and answer an undocumented 405, for any caller.
LOCK_ROUTES_SHADOWED = ("/sfp/api/locks/requests/", "/sfp/api/locks/{repository}")
LOCK_ROUTING_GAP = pytest.mark.xfail(
    reason="issue #13.1: lock routes shadowed by the path: repository converter", strict=False
)


@pytest.fixture(params=["anonymous", pytest.param("owner", marks=OWNER_KNOWN_FAILURES)])
def caller_headers(request, db, _in_test_transaction) -> dict:
    if request.param == "anonymous":
        return {}
    owner = make_member(TeamFactory(slug="acme"), TeamRole.OWNER, email="owner@example.com")
    return {"Authorization": f"Bearer {access_token_for(owner)}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@seed(SEED)
def test_every_operation_conforms_to_the_document(case, caller_headers, request):
    if case.path.startswith(LOCK_ROUTES_SHADOWED):
        request.node.add_marker(LOCK_ROUTING_GAP)
    case.call_and_validate(headers=caller_headers)
