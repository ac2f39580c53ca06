"""Provider clients against local fakes of GitHub, Azure AD and Azure DevOps over real HTTP: minting
and reusing short-lived tokens, and turning every failure into a precise ProviderError."""

import socket
import threading
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apps.integrations.providers import (
    AuthenticatedClient,
    ProviderError,
    clear_token_cache,
    client_for,
    verify,
)
from tests.support.fakes.azure import FakeAzure
from tests.support.fakes.github import FakeGitHub

APP_ID = "314159"
INSTALLATION_ID = "2718281"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
ADO_PAT = "ado5pat3xyzabcdefghijklmnopqrstuvwxyzabcdefghijklmno"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "8e2d5c1a-0000-4000-8000-00000000c1d0"
CLIENT_SECRET = "Zq8~sEcReT.vAlUe-0123456789abcdefghij"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def empty_token_cache():
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def github(app_key):
    with FakeGitHub() as fake:
        fake.add_app(APP_ID, _public_pem(app_key))
        fake.add_installation(INSTALLATION_ID, app_id=APP_ID, account="acme")
        fake.add_pat(PAT, "octocat")
        yield fake
        assert not fake.errors, fake.errors


@pytest.fixture
def azure():
    with FakeAzure() as fake:
        fake.add_organization("acme", ["payments", "billing"])
        fake.add_pat(ADO_PAT, "acme")
        fake.add_service_principal(
            tenant=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, organizations=["acme"]
        )
        yield fake
        assert not fake.errors, fake.errors


def _app_credentials(key: rsa.RSAPrivateKey, installation_id: str = INSTALLATION_ID) -> dict:
    return {"appId": APP_ID, "privateKey": _pem(key), "installationId": installation_id}


def _ado_config(azure: FakeAzure, **extra: str) -> dict:
    return {"baseUrl": azure.url, "loginUrl": azure.url, "organization": "acme", **extra}


def _sp_credentials(secret: str = CLIENT_SECRET) -> dict:
    return {"clientId": CLIENT_ID, "clientSecret": secret, "tenantId": TENANT}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _assert_secret_free(error: ProviderError, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in error.message
        assert secret not in str(error)
        assert secret not in repr(error)


# --- GitHub App ---------------------------------------------------------------------------


def test_github_app_mints_an_installation_token_once_and_reuses_it(github, app_key):
    config = {"apiUrl": github.url}

    first = client_for("github", "app", _app_credentials(app_key), config)
    second = client_for("github", "app", _app_credentials(app_key), config)

    assert github.tokens_minted == 1
    assert first.session.headers["Authorization"] == second.session.headers["Authorization"]
    assert first.session.headers["Authorization"].startswith("token ghs_")
    response = second.get("/installation/repositories", params={"per_page": 1})
    assert response.json()["repositories"][0]["full_name"] == "acme/sfp-project"
    minting = github.requests_to("POST", f"/app/installations/{INSTALLATION_ID}/access_tokens")
    assert len(minting) == 1
    assert minting[0].headers["accept"] == "application/vnd.github+json"
    assert minting[0].headers["authorization"].startswith("Bearer ey")


def test_github_app_token_is_minted_again_after_the_cache_is_cleared(github, app_key):
    config = {"apiUrl": github.url}
    first = client_for("github", "app", _app_credentials(app_key), config)

    clear_token_cache()
    second = client_for("github", "app", _app_credentials(app_key), config)

    assert github.tokens_minted == 2
    assert first.session.headers["Authorization"] != second.session.headers["Authorization"]


def test_github_app_token_within_five_minutes_of_expiry_is_not_reused(github, app_key):
    github.token_lifetime = timedelta(minutes=4)
    config = {"apiUrl": github.url}

    client_for("github", "app", _app_credentials(app_key), config)
    client_for("github", "app", _app_credentials(app_key), config)

    assert github.tokens_minted == 2


def test_github_app_token_with_more_than_five_minutes_left_is_reused(github, app_key):
    github.token_lifetime = timedelta(minutes=6)
    config = {"apiUrl": github.url}

    client_for("github", "app", _app_credentials(app_key), config)
    client_for("github", "app", _app_credentials(app_key), config)

    assert github.tokens_minted == 1


def test_concurrent_clients_for_one_installation_share_a_single_minted_token(github, app_key):
    config = {"apiUrl": github.url}
    headers: list[str] = []

    def build() -> None:
        client = client_for("github", "app", _app_credentials(app_key), config)
        headers.append(client.session.headers["Authorization"])

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert github.tokens_minted == 1
    assert len(headers) == 8
    assert len(set(headers)) == 1


def test_github_app_verify_reports_the_installation_account(github, app_key):
    result = verify("github", "app", _app_credentials(app_key), {"apiUrl": github.url})

    assert result == {
        "provider": "github",
        "auth_type": "app",
        "installation_id": INSTALLATION_ID,
        "account": "acme",
        "repositories": 1,
    }


def test_github_app_reads_the_api_url_from_settings(github, app_key, settings):
    settings.SFP_GITHUB_API_URL = github.url

    client = client_for("github", "app", _app_credentials(app_key))

    assert client.base_url == github.url
    assert github.tokens_minted == 1


def test_unparseable_private_key_is_invalid_before_any_request(github):
    credentials = {"appId": APP_ID, "privateKey": "not a key", "installationId": INSTALLATION_ID}

    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", credentials, {"apiUrl": github.url})

    assert caught.value.kind == "invalid"
    assert caught.value.message == "GitHub App private key is not a valid PEM RSA key"
    assert caught.value.upstream_status is None
    assert github.requests == []


def test_a_non_rsa_private_key_is_invalid(github):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = {"appId": APP_ID, "privateKey": pem, "installationId": INSTALLATION_ID}

    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", credentials, {"apiUrl": github.url})

    assert caught.value.kind == "invalid"
    _assert_secret_free(caught.value, pem)
    assert github.requests == []


def test_a_key_with_escaped_newlines_from_an_environment_variable_still_works(github, app_key):
    credentials = {**_app_credentials(app_key), "privateKey": _pem(app_key).replace("\n", "\\n")}

    client = client_for("github", "app", credentials, {"apiUrl": github.url})

    assert client.session.headers["Authorization"].startswith("token ghs_")


def test_a_key_that_is_not_the_apps_is_bad_credentials(github, other_key):
    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(other_key), {"apiUrl": github.url})

    error = caught.value
    assert error.kind == "bad_credentials"
    assert error.upstream_status == 401
    assert error.message.startswith("GitHub rejected the App JWT: check the App id and private key")
    assert "A JSON web token could not be decoded" in error.message
    _assert_secret_free(error, _pem(other_key))
    assert github.tokens_minted == 0


def test_a_wrong_key_never_receives_the_token_cached_for_the_right_one(github, app_key, other_key):
    config = {"apiUrl": github.url}
    client_for("github", "app", _app_credentials(app_key), config)

    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(other_key), config)

    assert caught.value.kind == "bad_credentials"
    assert github.tokens_minted == 1


def test_revoked_installation_is_not_found(github, app_key):
    github.revoke_installation(INSTALLATION_ID)

    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(app_key), {"apiUrl": github.url})

    assert caught.value.kind == "not_found"
    assert caught.value.upstream_status == 404
    assert caught.value.message == f"GitHub App installation {INSTALLATION_ID} not found or revoked"


def test_unknown_installation_is_not_found(github, app_key):
    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(app_key, "999"), {"apiUrl": github.url})

    assert caught.value.kind == "not_found"
    assert caught.value.message == "GitHub App installation 999 not found or revoked"


def test_non_numeric_installation_id_is_invalid_before_any_request(github, app_key):
    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(app_key, "../user"), {"apiUrl": github.url})

    assert caught.value.kind == "invalid"
    assert github.requests == []


def test_missing_app_credentials_are_named(github):
    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", {"appId": APP_ID}, {"apiUrl": github.url})

    assert caught.value.kind == "invalid"
    assert "missing: privateKey, installationId" in caught.value.message


def test_github_rate_limit_when_minting_gives_retry_after(github, app_key):
    github.rate_limit(reset_in_seconds=120)

    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(app_key), {"apiUrl": github.url})

    error = caught.value
    assert error.kind == "rate_limited"
    assert error.upstream_status == 403
    assert 110 <= error.retry_after <= 120
    assert "API rate limit exceeded for installation ID 1." in error.message


def test_github_rate_limit_on_an_api_call_gives_retry_after(github, app_key):
    client = client_for("github", "app", _app_credentials(app_key), {"apiUrl": github.url})
    github.rate_limit(reset_in_seconds=300)

    with pytest.raises(ProviderError) as caught:
        client.get("/installation/repositories")

    assert caught.value.kind == "rate_limited"
    assert 290 <= caught.value.retry_after <= 300


def test_client_repr_reveals_no_token(github, app_key):
    client = client_for("github", "app", _app_credentials(app_key), {"apiUrl": github.url})
    token = client.session.headers["Authorization"].removeprefix("token ")

    assert token.startswith("ghs_")
    assert token not in repr(client)
    assert token not in str(client)
    assert repr(client) == (
        f"AuthenticatedClient(provider='github', base_url='{github.url}', "
        f"credential='the installation token of installation {INSTALLATION_ID}')"
    )


def test_a_client_refuses_to_send_its_credentials_to_another_origin(github):
    client = client_for("github", "pat", {"token": PAT}, {"apiUrl": github.url})

    with pytest.raises(ProviderError) as caught:
        client.get("http://127.0.0.2:9/user")

    assert caught.value.kind == "invalid"
    assert github.requests == []


def test_unreachable_github_is_unavailable(app_key):
    url = _closed_port_url()

    with pytest.raises(ProviderError) as caught:
        client_for("github", "app", _app_credentials(app_key), {"apiUrl": url})

    assert caught.value.kind == "unavailable"
    assert caught.value.upstream_status is None
    assert caught.value.message.startswith(f"Could not reach GitHub at {url}: ")
    assert "refused" in caught.value.message


# --- GitHub personal access token -----------------------------------------------------------


def test_github_pat_verifies_as_its_user(github):
    result = verify("github", "pat", {"token": PAT}, {"apiUrl": github.url})

    assert result == {"provider": "github", "auth_type": "pat", "account": "octocat"}
    (request,) = github.requests_to("GET", "/user")
    assert request.headers["authorization"] == f"Bearer {PAT}"


def test_bad_github_pat_is_bad_credentials(github):
    bad = "ghp_thisTokenWasNeverIssued0123456789ab"

    with pytest.raises(ProviderError) as caught:
        verify("github", "pat", {"token": bad}, {"apiUrl": github.url})

    error = caught.value
    assert error.kind == "bad_credentials"
    assert error.upstream_status == 401
    assert error.message == (
        "GitHub rejected the personal access token (GitHub said: Bad credentials)"
    )
    _assert_secret_free(error, bad)


def test_github_404_on_an_api_call_is_not_found(github):
    client = client_for("github", "pat", {"token": PAT}, {"apiUrl": github.url})

    with pytest.raises(ProviderError) as caught:
        client.get("/repos/acme/missing")

    assert caught.value.kind == "not_found"
    assert caught.value.message == "GitHub answered 404 Not Found to GET /repos/acme/missing"


def test_unsupported_provider_or_auth_type_is_invalid():
    with pytest.raises(ProviderError) as caught:
        client_for("gitlab", "pat", {"token": "x"})
    assert caught.value.kind == "invalid"
    assert caught.value.message == "No client for provider gitlab with auth type pat"

    with pytest.raises(ProviderError) as caught:
        client_for("github", "oauth", {"token": "x"})
    assert caught.value.message == "No client for provider github with auth type oauth"


# --- Azure DevOps personal access token -----------------------------------------------------


def test_azure_devops_pat_verifies_against_the_organization(azure):
    result = verify("azuredevops", "pat", {"token": ADO_PAT}, _ado_config(azure))

    assert result == {"provider": "azuredevops", "auth_type": "pat", "account": "acme"}
    (request,) = azure.requests_to("GET", "/acme/_apis/projects")
    assert request.query == {"api-version": "7.1", "$top": "1"}
    assert request.headers["authorization"].startswith("Basic ")


def test_the_azure_devops_alias_is_accepted(azure):
    client = client_for("azure-devops", "pat", {"token": ADO_PAT}, _ado_config(azure))

    assert isinstance(client, AuthenticatedClient)
    assert client.provider == "azuredevops"
    assert client.base_url == f"{azure.url}/acme"
    assert ADO_PAT not in repr(client)


def test_bad_azure_devops_pat_is_bad_credentials(azure):
    bad = "neverissuedpat0123456789abcdefghijklmnopqrstuvwxyzab"

    with pytest.raises(ProviderError) as caught:
        verify("azuredevops", "pat", {"token": bad}, _ado_config(azure))

    error = caught.value
    assert error.kind == "bad_credentials"
    assert error.upstream_status == 401
    assert error.message == (
        "Azure DevOps rejected the personal access token for organization acme"
    )
    _assert_secret_free(error, bad)


def test_a_sign_in_page_instead_of_json_is_bad_credentials(azure):
    azure.sign_in_page_for_bad_credentials = True

    with pytest.raises(ProviderError) as caught:
        verify("azuredevops", "pat", {"token": "not-a-pat"}, _ado_config(azure))

    assert caught.value.kind == "bad_credentials"
    assert caught.value.upstream_status == 203
    assert caught.value.message == (
        "Azure DevOps rejected the personal access token for organization acme "
        "(it answered with its sign-in page)"
    )


def test_a_pat_of_another_organization_is_bad_credentials(azure):
    azure.add_organization("globex")

    with pytest.raises(ProviderError) as caught:
        verify("azuredevops", "pat", {"token": ADO_PAT}, _ado_config(azure, organization="globex"))

    assert caught.value.kind == "bad_credentials"
    assert "organization globex" in caught.value.message


def test_azure_devops_without_organization_is_invalid_before_any_request(azure):
    with pytest.raises(ProviderError) as caught:
        client_for("azuredevops", "pat", {"token": ADO_PAT}, {"baseUrl": azure.url})

    assert caught.value.kind == "invalid"
    assert "organization" in caught.value.message
    assert azure.requests == []


def test_azure_devops_rate_limit_gives_retry_after(azure):
    azure.rate_limit(retry_after_seconds=30)

    with pytest.raises(ProviderError) as caught:
        verify("azuredevops", "pat", {"token": ADO_PAT}, _ado_config(azure))

    error = caught.value
    assert error.kind == "rate_limited"
    assert error.upstream_status == 429
    assert error.retry_after == 30
    assert "TF400733" in error.message


def test_azure_devops_url_comes_from_settings(azure, settings):
    settings.SFP_AZURE_DEVOPS_URL = azure.url

    result = verify("azuredevops", "pat", {"token": ADO_PAT}, {"organization": "acme"})

    assert result["account"] == "acme"


# --- Azure DevOps with an Azure AD service principal ---------------------------------------


def test_service_principal_token_is_minted_once_and_reused(azure):
    config = _ado_config(azure)

    first = verify("azuredevops", "service_principal", _sp_credentials(), config)
    second = client_for("azuredevops", "service_principal", _sp_credentials(), config)

    assert first == {"provider": "azuredevops", "auth_type": "service_principal", "account": "acme"}
    assert azure.tokens_minted == 1
    assert second.session.headers["Authorization"].startswith("Bearer eyJ")
    (minting,) = azure.requests_to("POST", f"/{TENANT}/oauth2/v2.0/token")
    assert minting.form() == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "499b84ac-1321-427f-aa17-267ca6975798/.default",
    }
    assert CLIENT_SECRET not in repr(second)


def test_service_principal_token_close_to_expiry_is_minted_again(azure):
    azure.token_lifetime_seconds = 240
    config = _ado_config(azure)

    client_for("azuredevops", "service_principal", _sp_credentials(), config)
    client_for("azuredevops", "service_principal", _sp_credentials(), config)

    assert azure.tokens_minted == 2


def test_service_principal_with_a_bad_secret_is_bad_credentials(azure):
    bad_secret = "Wr0ng~secret.value-abcdefghijklmnopqrs"

    with pytest.raises(ProviderError) as caught:
        client_for(
            "azuredevops", "service_principal", _sp_credentials(bad_secret), _ado_config(azure)
        )

    error = caught.value
    assert error.kind == "bad_credentials"
    assert error.upstream_status == 401
    assert error.message.startswith(
        f"Azure AD rejected the client credentials of service principal {CLIENT_ID} "
        f"in tenant {TENANT}: AADSTS7000215: Invalid client secret provided."
    )
    assert "Trace ID" not in error.message
    _assert_secret_free(error, bad_secret, CLIENT_SECRET)
    assert azure.tokens_minted == 0


def test_a_bad_secret_never_receives_the_token_cached_for_the_right_one(azure):
    config = _ado_config(azure)
    client_for("azuredevops", "service_principal", _sp_credentials(), config)

    with pytest.raises(ProviderError) as caught:
        client_for("azuredevops", "service_principal", _sp_credentials("guess"), config)

    assert caught.value.kind == "bad_credentials"


def test_unknown_tenant_is_bad_credentials(azure):
    credentials = {**_sp_credentials(), "tenantId": "contoso.onmicrosoft.com"}

    with pytest.raises(ProviderError) as caught:
        client_for("azuredevops", "service_principal", credentials, _ado_config(azure))

    assert caught.value.kind == "bad_credentials"
    assert caught.value.upstream_status == 400
    assert "AADSTS90002: Tenant 'contoso.onmicrosoft.com' not found." in caught.value.message


def test_service_principal_outside_the_organization_is_bad_credentials(azure):
    azure.add_organization("globex")
    config = _ado_config(azure, organization="globex")

    with pytest.raises(ProviderError) as caught:
        verify("azuredevops", "service_principal", _sp_credentials(), config)

    assert caught.value.kind == "bad_credentials"
    assert caught.value.message == (
        f"Azure DevOps rejected the Azure AD token of service principal {CLIENT_ID}"
    )


def test_service_principal_rate_limited_by_azure_devops(azure):
    client = client_for("azuredevops", "service_principal", _sp_credentials(), _ado_config(azure))
    azure.rate_limit(retry_after_seconds=12)

    with pytest.raises(ProviderError) as caught:
        client.get("/_apis/projects", params={"api-version": "7.1"})

    assert caught.value.kind == "rate_limited"
    assert caught.value.retry_after == 12


def test_unreachable_azure_ad_is_unavailable(azure):
    config = {**_ado_config(azure), "loginUrl": _closed_port_url()}

    with pytest.raises(ProviderError) as caught:
        client_for("azuredevops", "service_principal", _sp_credentials(), config)

    assert caught.value.kind == "unavailable"
    assert caught.value.message.startswith("Could not reach Azure AD at ")
    _assert_secret_free(caught.value, CLIENT_SECRET)
