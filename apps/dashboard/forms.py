"""The dashboard's forms. They only shape input (parse the JSON, offer the task types a caller
may run); whether the input is acceptable is decided by the same services the API calls."""

import json

from django import forms

from apps.accounts.principal import Principal
from apps.tasks.catalogue import OPERATIONS


class LoginForm(forms.Form):
    email = forms.EmailField(
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"})
    )
    # Optional: an email whose domain has an SSO provider goes to that IdP instead.
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def operation_choices(principal: Principal) -> list[tuple[str, str]]:
    """The catalogue's operations this caller's roles may submit."""
    return [
        (name, f"{name} — {operation.description}")
        for name, operation in OPERATIONS.items()
        if principal.roles & set(operation.allowed_roles)
    ]


class TaskSubmitForm(forms.Form):
    # Not a ChoiceField: an unknown type is refused by `task_submit`, with the API's message.
    type = forms.CharField(max_length=64)
    data = forms.CharField(
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="The task's input as a JSON object, as in POST /sfp/api/tasks.",
    )

    def __init__(self, *args, principal: Principal, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].widget = forms.Select(choices=operation_choices(principal))

    def clean_data(self):
        text = self.cleaned_data["data"].strip() or "{}"
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from None


class GateDecisionForm(forms.Form):
    step = forms.CharField(max_length=128)
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(max_length=500, required=False)


class StepRetryForm(forms.Form):
    step = forms.CharField(max_length=128)


class LockReleaseForm(forms.Form):
    ticket = forms.UUIDField()
