"""factory-boy factories for projects, stored directly (valid by construction)."""

import factory

from apps.projects.models import Platform, Project


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    identifier = factory.Sequence(lambda n: f"acme/repo-{n}")
    remote_url = factory.LazyAttribute(lambda p: f"https://github.com/{p.identifier}.git")
    platform = Platform.GITHUB
    configuration = factory.LazyFunction(dict)
    created_by = "owner@example.com"
