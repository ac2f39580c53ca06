"""Console screens for identity and access: users, teams, memberships, tokens, sessions, audit,
SSO providers.

Changes that the team rules govern (adding or removing members, changing roles, deleting teams
or users, revoking tokens) go through the same services as the API, so the console cannot break
an invariant the API protects; a refusal is shown as an error message. Token plaintext and hashes
are never shown; the audit log is read-only.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpResponseRedirect

from apps.accounts import services
from apps.accounts.models import (
    ApplicationToken,
    AuditEvent,
    Membership,
    RefreshToken,
    SamlIdentityProvider,
    SsoDomain,
    Team,
    User,
)
from apps.accounts.principal import principal_for_user
from apps.core.exceptions import ServiceError


def _actor(request):
    return principal_for_user(request.user)


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "first_name", "last_name", "is_active")


class MembershipInline(admin.TabularInline):
    """Shown for reference; memberships change through the Membership screen (the team rules)."""

    model = Membership
    extra = 0
    can_delete = False
    fields = ("team", "user", "role", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ServiceGuardMixin:
    """Saves and deletes go through services; a refusal rolls the whole form back and comes
    back as an error message on the same page instead of a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return HttpResponseRedirect(request.path.rsplit("/delete/", 1)[0] + "/change/")

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)  # bulk deletes would skip the rules
        return actions


@admin.register(User)
class UserAdmin(ServiceGuardMixin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_active", "date_joined", "last_login")
    list_filter = ("is_active", "memberships__role", "memberships__team")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("last_login", "date_joined")
    filter_horizontal = ()
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Access", {"fields": ("is_active",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def delete_model(self, request, obj):
        services.user_delete(actor=_actor(request), user=obj, request=request)


@admin.register(Team)
class TeamAdmin(ServiceGuardMixin, admin.ModelAdmin):
    list_display = ("slug", "name", "member_count", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at", "updated_at")
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, obj) -> int:
        return obj.memberships.count()

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "slug") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.team_create(
            actor=_actor(request),
            slug=obj.slug,
            name=obj.name,
            description=obj.description,
            request=request,
        )
        obj.pk = created.pk

    def delete_model(self, request, obj):
        services.team_delete(actor=_actor(request), team=obj, request=request)


@admin.register(Membership)
class MembershipAdmin(ServiceGuardMixin, admin.ModelAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", "team")
    search_fields = ("user__email", "team__slug")
    autocomplete_fields = ("user", "team")

    def get_readonly_fields(self, request, obj=None):
        return ("team", "user", "created_at") if obj else ("created_at",)

    def save_model(self, request, obj, form, change):
        if change:
            services.membership_set_role(
                actor=_actor(request),
                team=obj.team,
                email=obj.user.email,
                role=obj.role,
                request=request,
            )
            return
        created = services.membership_add(
            actor=_actor(request),
            team=obj.team,
            email=obj.user.email,
            role=obj.role,
            request=request,
        )
        obj.pk = created.pk

    def delete_model(self, request, obj):
        services.membership_remove(
            actor=_actor(request), team=obj.team, email=obj.user.email, request=request
        )


@admin.register(ApplicationToken)
class ApplicationTokenAdmin(admin.ModelAdmin):
    """Tokens are created through the API (shown once there); here they are listed and revoked."""

    list_display = (
        "name",
        "id",
        "masked",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "token_status",
    )
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "id", "created_by__email")
    fields = (
        "id",
        "name",
        "masked",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke_tokens"]

    @admin.display(description="token")
    def masked(self, obj) -> str:
        return f"sfp_app_…{obj.last4}"

    @admin.display(description="status")
    def token_status(self, obj) -> str:
        return obj.status

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        for token in queryset:
            services.app_token_revoke(actor=_actor(request), token_id=token.pk, request=request)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(RefreshToken)
class SessionAdmin(admin.ModelAdmin):
    """Login sessions, one row per refresh token (hash never shown)."""

    list_display = ("user", "family", "created_at", "expires_at", "rotated_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__email", "family")
    fields = ("user", "family", "created_at", "expires_at", "rotated_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only, with the same filters as `GET /sfp/api/audit`."""

    list_display = (
        "occurred_at",
        "action",
        "actor_email",
        "actor_token_id",
        "actor_role",
        "method",
        "path",
        "status_code",
        "client_ip",
    )
    list_filter = ("action", "actor_role", "method", "status_code")
    search_fields = ("actor_email", "actor_token_id", "path", "request_id", "target_id")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class SsoDomainInline(admin.TabularInline):
    model = SsoDomain
    extra = 0
    fields = ("domain", "sso_required")


@admin.register(SamlIdentityProvider)
class SamlIdentityProviderAdmin(admin.ModelAdmin):
    """Providers, their domains and the last metadata refresh. Registration and deletion go
    through the API (which downloads, parses and audits); here a domain's SSO requirement and
    the provisioning team can be changed."""

    list_display = ("entity_id", "domain_list", "metadata_refreshed_at", "metadata_refresh_error")
    readonly_fields = (
        "entity_id",
        "sso_url",
        "metadata_url",
        "signing_certificates",
        "created_by",
        "created_at",
        "metadata_refreshed_at",
        "metadata_refresh_error",
    )
    fields = (*readonly_fields, "provision_team")
    inlines = [SsoDomainInline]

    @admin.display(description="Domains")
    def domain_list(self, provider):
        return ", ".join(d.domain for d in provider.domains.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    def has_add_permission(self, request):
        return False
