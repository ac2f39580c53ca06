"""factory-boy factories for accounts records, and helpers that hand out working credentials."""

from datetime import timedelta

import factory
from django.utils import timezone

from apps.accounts.models import ApplicationToken, Membership, Team, TeamRole, User
from apps.accounts.principal import principal_for_user
from apps.accounts.services import app_token_create, session_login
from apps.accounts.tokens import new_app_token, token_hash

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):  # noqa: N805 - factory-boy signature
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = TeamRole.MEMBER


def make_member(team: Team, role: str = TeamRole.MEMBER, **user_fields) -> User:
    user = UserFactory(**user_fields)
    MembershipFactory(team=team, user=user, role=role)
    return user


def access_token_for(user: User, rf=None) -> str:
    """A real session access token, obtained through the login service."""
    from django.test import RequestFactory

    request = (rf or RequestFactory()).post("/sfp/api/auth/admin/login")
    request.request_id = "test"
    return session_login(email=user.email, password=DEFAULT_PASSWORD, request=request).access_token


def app_token_for(creator: User, *, days: int = 30) -> tuple[ApplicationToken, str]:
    return app_token_create(actor=principal_for_user(creator), name="ci", expires_in_days=days)


def expired_app_token_for(creator: User) -> str:
    raw = new_app_token()
    ApplicationToken.objects.create(
        name="old",
        token_hash=token_hash(raw),
        last4=raw[-4:],
        created_by=creator,
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    return raw
