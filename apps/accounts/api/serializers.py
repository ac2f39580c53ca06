"""Request validation and documented response shapes of the accounts endpoints (published DTOs)."""

from django.conf import settings
from rest_framework import serializers

from apps.accounts.models import TeamRole
from apps.accounts.roles import Role


class AdminLoginSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, max_length=1024)


class RefreshSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=256)


class CallbackSerializer(serializers.Serializer):
    access_token = serializers.CharField(max_length=4096)
    refresh_token = serializers.CharField(max_length=256, required=False)


class UserSerializer(serializers.Serializer):
    """UserDto."""

    id = serializers.UUIDField()
    firstName = serializers.CharField()
    lastName = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.values, allow_null=True)
    teams = serializers.ListField(child=serializers.CharField())
    authData = serializers.DictField(required=False)


class LoginResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    user = UserSerializer()


class CreateUserSerializer(serializers.Serializer):
    email = serializers.EmailField()
    firstName = serializers.CharField(required=False, allow_blank=True, max_length=150)
    lastName = serializers.CharField(required=False, allow_blank=True, max_length=150)
    team = serializers.SlugField(required=False)
    role = serializers.ChoiceField(choices=TeamRole.choices, default=TeamRole.MEMBER)
    password = serializers.CharField(required=False, trim_whitespace=False, max_length=1024)


class DeleteUserSerializer(serializers.Serializer):
    email = serializers.EmailField()


class UpdateUserSerializer(serializers.Serializer):
    firstName = serializers.CharField(required=False, allow_blank=True, max_length=150)
    lastName = serializers.CharField(required=False, allow_blank=True, max_length=150)
    role = serializers.ChoiceField(choices=TeamRole.choices, required=False)


class CreateTeamSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AddMemberSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=TeamRole.choices, default=TeamRole.MEMBER)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=TeamRole.choices)


class MembershipSerializer(serializers.Serializer):
    """TeamMembershipDto."""

    user_id = serializers.UUIDField()
    account_id = serializers.UUIDField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    role = serializers.ChoiceField(choices=TeamRole.choices)
    created_at = serializers.DateTimeField()


class CreateTokenSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    expiresIn = serializers.IntegerField(
        default=settings.SFP_APP_TOKEN_DEFAULT_DAYS,
        min_value=1,
        max_value=settings.SFP_APP_TOKEN_MAX_DAYS,
        help_text="Days until the token expires.",
    )


class ApplicationTokenSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    createdAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField()
    lastUsedAt = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"])
    last4 = serializers.CharField()
    createdBy = serializers.EmailField()


class CreatedTokenSerializer(ApplicationTokenSerializer):
    token = serializers.CharField(help_text="Shown once; store it now.")


class AuditQuerySerializer(serializers.Serializer):
    actor = serializers.CharField(required=False, help_text="Actor email or token id.")
    action = serializers.CharField(required=False)
    path = serializers.CharField(required=False, help_text="Path prefix.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")
    count = serializers.BooleanField(
        required=False, default=False, help_text="true: the page carries the exact total."
    )
