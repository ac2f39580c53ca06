"""The Salesforce side of the org registry: reading SFDX auth URLs, and connecting to an org
through a local fake Salesforce over real HTTP without ever leaking a secret."""

import socket

import pytest
from django.test import override_settings

from apps.integrations.salesforce import (
    OrgIdentity,
    SalesforceError,
    SfdxAuthUrl,
    connect,
    exchange_refresh_token,
    parse_auth_url,
    to_18_char_id,
)
from tests.support.fakes.salesforce import FakeSalesforce

REFRESH_TOKEN = (
    "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrfh4bPBlnpdo0bQmRp3X.3q3V6UdjGF0lwEqJ3xvUTkPq"
)
CLIENT_SECRET = "8C1F3B0E5A7D9C2B4E6F8A0C1D3E5F7A9B2C4D6E8F0A1B3C5D7E9F1A3B5C7D9E"
ORG_ID = "00D5g000004XyZaEAK"
USER_ID = "0055g00000AbCdEAAV"


@pytest.fixture
def salesforce():
    with FakeSalesforce() as fake, override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[fake.host]):
        yield fake
        assert not fake.errors, fake.errors


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_secret_free(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# --- parsing --------------------------------------------------------------------------------


def test_parses_an_auth_url_without_scheme_and_with_an_empty_secret():
    auth = parse_auth_url(f"force://PlatformCLI::{REFRESH_TOKEN}@acme.my.salesforce.com")

    assert auth == SfdxAuthUrl(
        client_id="PlatformCLI",
        client_secret="",
        refresh_token=REFRESH_TOKEN,
        instance_url="https://acme.my.salesforce.com",
    )


def test_parses_an_auth_url_whose_instance_has_https_and_a_trailing_slash():
    auth = parse_auth_url(
        f"  force://3MVG9connectedApp:{CLIENT_SECRET}:{REFRESH_TOKEN}"
        "@https://Acme--UAT.sandbox.my.salesforce.com/\n"
    )

    assert auth.client_id == "3MVG9connectedApp"
    assert auth.client_secret == CLIENT_SECRET
    assert auth.refresh_token == REFRESH_TOKEN
    assert auth.instance_url == "https://acme--uat.sandbox.my.salesforce.com"


@pytest.mark.parametrize(
    "host",
    [
        "login.salesforce.com",
        "acme.lightning.force.com",
        "agency.my.salesforce.mil",
        "na1.cloudforce.com",
        "acme.my.sfcrmproducts.cn",
    ],
)
def test_every_salesforce_domain_is_accepted(host):
    assert parse_auth_url(f"force://PlatformCLI::{REFRESH_TOKEN}@{host}").instance_url == (
        f"https://{host}"
    )


def test_to_url_is_the_canonical_form_and_parses_back():
    raw = f"force://PlatformCLI::{REFRESH_TOKEN}@https://acme.my.salesforce.com"
    auth = parse_auth_url(raw)

    assert auth.to_url() == f"force://PlatformCLI::{REFRESH_TOKEN}@acme.my.salesforce.com"
    assert parse_auth_url(auth.to_url()) == auth


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            f"https://PlatformCLI::{REFRESH_TOKEN}@acme.my.salesforce.com",
            "SFDX auth URL must start with force://",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}",
            "SFDX auth URL has no '@' between the credentials and the instance",
        ),
        (
            f"force://PlatformCLI:{REFRESH_TOKEN}@acme.my.salesforce.com",
            "SFDX auth URL must have exactly 3 ':'-separated parts before '@' "
            "(clientId:clientSecret:refreshToken), found 2",
        ),
        (
            f"force://PlatformCLI:{CLIENT_SECRET}:{REFRESH_TOKEN}:extra@acme.my.salesforce.com",
            "SFDX auth URL must have exactly 3 ':'-separated parts before '@' "
            "(clientId:clientSecret:refreshToken), found 4",
        ),
        (
            f"force://:{CLIENT_SECRET}:{REFRESH_TOKEN}@acme.my.salesforce.com",
            "SFDX auth URL has an empty client id",
        ),
        (
            f"force://PlatformCLI:{CLIENT_SECRET}:@acme.my.salesforce.com",
            "SFDX auth URL has an empty refresh token",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@",
            "SFDX auth URL has no instance host after '@'",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@acme .my.salesforce.com",
            "Instance host 'acme .my.salesforce.com' is not a valid host name",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@https://",
            "SFDX auth URL has no instance host after '@'",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@evil.example.com",
            "Instance host evil.example.com is not a Salesforce domain",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@salesforce.com.evil.example",
            "Instance host salesforce.com.evil.example is not a Salesforce domain",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@http://acme.my.salesforce.com",
            "Instance host acme.my.salesforce.com must be reached over https; plain http is "
            "only allowed for hosts listed in SFP_SALESFORCE_INSECURE_HOSTS",
        ),
        (
            f"force://PlatformCLI::{REFRESH_TOKEN}@ftp://acme.my.salesforce.com",
            "Instance ftp://acme.my.salesforce.com must use https",
        ),
    ],
)
def test_malformed_auth_urls_are_refused_precisely_and_without_secrets(raw, message):
    with pytest.raises(SalesforceError) as caught:
        parse_auth_url(raw)

    assert caught.value.message == message
    _assert_secret_free(str(caught.value), REFRESH_TOKEN, CLIENT_SECRET)


def test_local_host_is_refused_unless_listed_as_insecure():
    raw = f"force://PlatformCLI::{REFRESH_TOKEN}@127.0.0.1:54321"

    with (
        override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[]),
        pytest.raises(SalesforceError) as caught,
    ):
        parse_auth_url(raw)
    assert caught.value.message == "Instance host 127.0.0.1:54321 is not a Salesforce domain"

    with override_settings(SFP_SALESFORCE_INSECURE_HOSTS=["127.0.0.1:54321"]):
        assert parse_auth_url(raw).instance_url == "http://127.0.0.1:54321"
        assert parse_auth_url(raw.replace("@", "@http://")).instance_url == (
            "http://127.0.0.1:54321"
        )


def test_an_insecure_listing_is_per_port():
    raw = f"force://PlatformCLI::{REFRESH_TOKEN}@127.0.0.1:54322"

    with override_settings(SFP_SALESFORCE_INSECURE_HOSTS=["127.0.0.1:54321"]):
        with pytest.raises(SalesforceError) as caught:
            parse_auth_url(raw)

    assert caught.value.message == "Instance host 127.0.0.1:54322 is not a Salesforce domain"


def test_auth_url_repr_masks_the_secret_and_refresh_token():
    auth = parse_auth_url(
        f"force://3MVG9connectedApp:{CLIENT_SECRET}:{REFRESH_TOKEN}@acme.my.salesforce.com"
    )

    for text in (repr(auth), str(auth), f"{auth}", repr([auth])):
        _assert_secret_free(text, REFRESH_TOKEN, CLIENT_SECRET)
    assert repr(auth) == (
        "SfdxAuthUrl(client_id='3MVG9connectedApp', client_secret='***', refresh_token='***', "
        "instance_url='https://acme.my.salesforce.com')"
    )


def test_fifteen_character_ids_become_eighteen():
    assert to_18_char_id("00D5g000004XyZa") == "00D5g000004XyZaEAK"
    assert to_18_char_id("001000000000001") == "001000000000001AAA"
    assert to_18_char_id(ORG_ID) == ORG_ID


# --- connecting -----------------------------------------------------------------------------


def test_connect_describes_the_org_and_user(salesforce):
    salesforce.add_org(
        refresh_token=REFRESH_TOKEN,
        client_id="3MVG9connectedApp",
        client_secret=CLIENT_SECRET,
        username="release@acme.example",
        org_id=ORG_ID,
        user_id=USER_ID,
        is_sandbox=True,
        organization_type="Enterprise Edition",
        instance_name="CS42",
    )
    auth = parse_auth_url(salesforce.auth_url(REFRESH_TOKEN))

    identity = connect(auth)

    assert isinstance(identity, OrgIdentity)
    assert identity.username == "release@acme.example"
    assert identity.org_id == ORG_ID
    assert identity.user_id == USER_ID
    assert identity.instance_url == salesforce.url
    assert identity.organization_type == "Enterprise Edition"
    assert identity.is_sandbox is True
    assert identity.instance_name == "CS42"
    assert identity.access_token.startswith(ORG_ID[:15] + "!")
    (token_request,) = salesforce.requests_to("POST", "/services/oauth2/token")
    assert token_request.form() == {
        "grant_type": "refresh_token",
        "client_id": "3MVG9connectedApp",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }
    (identity_request,) = salesforce.requests_to("GET", f"/id/{ORG_ID}/{USER_ID}")
    assert identity_request.headers["authorization"] == f"Bearer {identity.access_token}"
    (query,) = salesforce.requests_to("GET", "/services/data/v60.0/query")
    assert query.query["q"] == (
        "SELECT Id,Name,IsSandbox,OrganizationType,InstanceName FROM Organization"
    )


def test_connect_with_the_cli_app_sends_no_client_secret(salesforce):
    org = salesforce.add_org(refresh_token=REFRESH_TOKEN)

    identity = connect(parse_auth_url(salesforce.auth_url(REFRESH_TOKEN)))

    assert identity.username == org.username
    assert identity.org_id == org.org_id
    assert to_18_char_id(identity.org_id[:15]) == identity.org_id
    assert identity.organization_type == "Developer Edition"
    assert identity.is_sandbox is False
    (token_request,) = salesforce.requests_to("POST", "/services/oauth2/token")
    assert "client_secret" not in token_request.form()


def test_org_identity_repr_masks_the_access_token(salesforce):
    salesforce.add_org(refresh_token=REFRESH_TOKEN, username="admin@acme.example")

    identity = connect(parse_auth_url(salesforce.auth_url(REFRESH_TOKEN)))

    for text in (repr(identity), str(identity), repr([identity])):
        _assert_secret_free(text, identity.access_token, REFRESH_TOKEN)
    assert "access_token='***'" in repr(identity)
    assert "username='admin@acme.example'" in repr(identity)


def test_exchange_returns_the_session_instance_and_identity_url(salesforce):
    salesforce.add_org(refresh_token=REFRESH_TOKEN, org_id=ORG_ID, user_id=USER_ID)

    access_token, instance_url, identity_url = exchange_refresh_token(
        parse_auth_url(salesforce.auth_url(REFRESH_TOKEN))
    )

    assert access_token.startswith(ORG_ID[:15] + "!")
    assert instance_url == salesforce.url
    assert identity_url == f"{salesforce.url}/id/{ORG_ID}/{USER_ID}"


def test_revoked_refresh_token_is_refused(salesforce):
    salesforce.add_org(refresh_token=REFRESH_TOKEN, client_secret=CLIENT_SECRET)
    auth = parse_auth_url(salesforce.auth_url(REFRESH_TOKEN))
    salesforce.revoke(REFRESH_TOKEN)

    with pytest.raises(SalesforceError) as caught:
        connect(auth)

    assert caught.value.message == (
        "Salesforce refused the refresh token: expired access/refresh token"
    )
    assert caught.value.error_code == "invalid_grant"
    _assert_secret_free(str(caught.value), REFRESH_TOKEN, CLIENT_SECRET)
    _assert_secret_free(repr(caught.value), REFRESH_TOKEN, CLIENT_SECRET)


def test_wrong_client_id_is_refused(salesforce):
    salesforce.add_org(refresh_token=REFRESH_TOKEN)
    raw = salesforce.auth_url(REFRESH_TOKEN).replace("PlatformCLI", "SomeOtherApp")

    with pytest.raises(SalesforceError) as caught:
        connect(parse_auth_url(raw))

    assert caught.value.message == (
        "Salesforce refused the client id SomeOtherApp: client identifier invalid"
    )
    assert caught.value.error_code == "invalid_client_id"


def test_wrong_client_secret_is_refused(salesforce):
    salesforce.add_org(
        refresh_token=REFRESH_TOKEN, client_id="3MVG9connectedApp", client_secret=CLIENT_SECRET
    )
    wrong_secret = "0" * 64
    raw = salesforce.auth_url(REFRESH_TOKEN).replace(CLIENT_SECRET, wrong_secret)

    with pytest.raises(SalesforceError) as caught:
        connect(parse_auth_url(raw))

    assert caught.value.message == (
        "Salesforce refused the client credentials: invalid client credentials"
    )
    _assert_secret_free(str(caught.value), REFRESH_TOKEN, CLIENT_SECRET, wrong_secret)


def test_expired_session_is_reported_without_the_access_token(salesforce):
    salesforce.add_org(refresh_token=REFRESH_TOKEN)
    salesforce.session_request_budget = 0

    with pytest.raises(SalesforceError) as caught:
        connect(parse_auth_url(salesforce.auth_url(REFRESH_TOKEN)))

    assert caught.value.message == (
        "Salesforce rejected the session when reading the identity URL: Bad_OAuth_Token"
    )
    (token_request,) = salesforce.requests_to("POST", "/services/oauth2/token")
    assert token_request.form()["refresh_token"] == REFRESH_TOKEN
    _assert_secret_free(str(caught.value), REFRESH_TOKEN)


def test_session_rejected_by_the_rest_api_is_reported(salesforce):
    salesforce.add_org(refresh_token=REFRESH_TOKEN)
    salesforce.session_request_budget = 1  # the identity call uses it up

    with pytest.raises(SalesforceError) as caught:
        connect(parse_auth_url(salesforce.auth_url(REFRESH_TOKEN)))

    assert caught.value.message == (
        "Salesforce rejected the session when reading the Organization record: "
        "INVALID_SESSION_ID: Session expired or invalid"
    )
    assert caught.value.error_code == "INVALID_SESSION_ID"


def test_unreachable_instance_is_reported(salesforce):
    port = _closed_port()
    raw = f"force://PlatformCLI::{REFRESH_TOKEN}@127.0.0.1:{port}"

    with override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[f"127.0.0.1:{port}"]):
        auth = parse_auth_url(raw)
        with pytest.raises(SalesforceError) as caught:
            connect(auth)

    assert caught.value.message.startswith(f"Could not reach http://127.0.0.1:{port}: ")
    assert "refused" in caught.value.message
    _assert_secret_free(str(caught.value), REFRESH_TOKEN)
