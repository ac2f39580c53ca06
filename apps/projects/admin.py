"""Console screen for projects: list, search and filter them; onboard, edit and delete through the
same services as the API, so the console validates the configuration exactly as the API does.

The edit form carries the version it was loaded at: saving over a change someone made meanwhile
is refused (the same 409 rule as the API) and shown as an error message, not applied.
"""

from django import forms
from django.contrib import admin

from apps.accounts.admin import ServiceGuardMixin
from apps.accounts.principal import principal_for_user
from apps.core.exceptions import ServiceError
from apps.projects import services
from apps.projects.models import Project


class ProjectForm(forms.ModelForm):
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Project
        fields = ("identifier", "remote_url", "configuration")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if cleaned.get("configuration") is None:  # an emptied textarea means "no settings"
            cleaned["configuration"] = {}
        identifier = cleaned.get("identifier") or self.instance.identifier
        try:
            platform = services.detect_platform(cleaned.get("remote_url"))
            services.validate_identifier(identifier, platform=platform)
            services.validate_configuration(cleaned.get("configuration"))
        except ServiceError as refused:
            raise forms.ValidationError(refused.message) from None
        return cleaned


@admin.register(Project)
class ProjectAdmin(ServiceGuardMixin, admin.ModelAdmin):
    form = ProjectForm
    list_display = ("identifier", "platform", "remote_url", "version", "created_by", "updated_at")
    list_filter = ("platform",)
    search_fields = ("identifier", "remote_url", "created_by")
    readonly_fields = ("platform", "version", "created_by", "created_at", "updated_at")
    fields = (
        "identifier",
        "remote_url",
        "configuration",
        "loaded_version",
        "platform",
        "version",
        "created_by",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "identifier") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        actor = principal_for_user(request.user)
        data = form.cleaned_data
        if change:
            saved = services.project_update(
                actor=actor,
                identifier=obj.identifier,
                remote_url=data["remote_url"],
                configuration=data["configuration"],
                version=data.get("loaded_version"),
                request=request,
            )
        else:
            saved = services.project_create(
                actor=actor,
                identifier=data["identifier"],
                remote_url=data["remote_url"],
                configuration=data["configuration"],
                request=request,
            )
        obj.pk, obj.version = saved.pk, saved.version

    def delete_model(self, request, obj):
        services.project_delete(
            actor=principal_for_user(request.user), identifier=obj.identifier, request=request
        )
