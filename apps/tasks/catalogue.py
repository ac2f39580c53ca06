"""The catalogue of operations the server runs, each declared once as an `Operation`: its input
schema, who may submit it, the credentials its grant names, the environment lock it holds, its
policy (pool, retries, backoff, timeout) and the `sfp` command line it becomes.

Everything else reads this one object: submission and pipelines (`operation(name)`), the
django.tasks functions derived from it (`apps.tasks.tasks`, `Operation.task`), and both backends
through the task class (`SfpTask.operation`). Command lines never contain a credential: orgs are
referred to by alias, authorised in the sf CLI beforehand from their auth URLs (see
`apps.tasks.execution`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from rest_framework import serializers

from apps.core.exceptions import InvalidRequest
from apps.tasks.models import Pool

# The aliases sfp commands name orgs by; each is authorised in the sf CLI before sfp runs, with
# the flags that make it the default for its role.
ORG_ALIAS_LOGIN_FLAGS = {"devhub": ["--set-default-dev-hub"], "target": ["--set-default"]}
# The grant item naming the repository checkout an sfp command runs in.
SOURCE_ALIAS = "source"


class _Repository(serializers.Serializer):
    repository = serializers.RegexField(
        r"^[\w.-]+(/[\w.-]+){1,2}$", help_text="owner/repo or org/project/repo"
    )
    branch = serializers.CharField(max_length=255, default="main")


class BuildInput(_Repository):
    devhub = serializers.CharField(max_length=254, help_text="Username of a registered DevHub")
    buildNumber = serializers.IntegerField(min_value=1, required=False)
    diffcheck = serializers.BooleanField(default=True)


class _TargetOrEnvironment(_Repository):
    """A target org by username, or an environment of the repository (whose lock is then held
    while the task runs)."""

    targetOrg = serializers.CharField(max_length=254, required=False)
    environment = serializers.CharField(max_length=120, required=False)

    def validate(self, attrs):
        if not attrs.get("targetOrg") and not attrs.get("environment"):
            raise serializers.ValidationError({"targetOrg": ["Give targetOrg or environment."]})
        return attrs


class InstallInput(_TargetOrEnvironment):
    artifactDir = serializers.CharField(max_length=255, default="artifacts")
    skipIfAlreadyInstalled = serializers.BooleanField(default=True)


class ValidateInput(_Repository):
    targetOrg = serializers.CharField(max_length=254)
    mode = serializers.ChoiceField(
        choices=["thorough", "individual", "ff-release-config"], default="thorough"
    )


class ReleaseInput(_TargetOrEnvironment):
    releaseDefinition = serializers.CharField(max_length=255)
    dryRun = serializers.BooleanField(default=False)


class PoolPrepareInput(_Repository):
    devhub = serializers.CharField(max_length=254)
    poolConfig = serializers.CharField(max_length=255)


class ApexTestsInput(_Repository):
    targetOrg = serializers.CharField(max_length=254)
    testLevel = serializers.ChoiceField(
        choices=["RunLocalTests", "RunAllTestsInOrg", "RunSpecifiedTests"], default="RunLocalTests"
    )
    package = serializers.CharField(max_length=255, required=False)


class NoopInput(serializers.Serializer):
    sleepSeconds = serializers.FloatField(min_value=0, max_value=60, default=0)
    fail = serializers.BooleanField(default=False)


def _org(alias: str, username: str) -> dict:
    return {"kind": "salesforce_org", "ref": {"username": username}, "alias": alias}


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    input_serializer: type[serializers.Serializer]
    command: Callable[[dict], list[str]] | None
    orgs: Callable[[dict], list[dict]] = field(default=lambda data: [])
    allowed_roles: tuple[str, ...] = ("owner", "member", "application")
    locks_environment: bool = False  # holds the environment's lock while it runs
    pool: str = Pool.STANDARD
    retries: int = 1
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: int = 3600

    @property
    def task_function_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def task(self):
        """The django.tasks task that runs this operation (derived from it)."""
        from apps.tasks.tasks import DECLARED

        return DECLARED[self.name]

    def validate(self, data) -> dict:
        serializer = self.input_serializer(data=data if isinstance(data, dict) else None)
        if not isinstance(data, dict):
            raise InvalidRequest("data must be an object", details={"data": ["Object."]})
        unknown = sorted(set(data) - set(serializer.fields))
        if unknown:  # a typo ({"sleep": 30}) must not run with defaults
            details = {f"data.{key}": ["Unknown field."] for key in unknown}
            raise InvalidRequest(
                f"Unknown field{'s' if len(unknown) > 1 else ''} in data for {self.name}: "
                f"{', '.join(unknown)} (accepted: {', '.join(serializer.fields)})",
                details=details,
            )
        if not serializer.is_valid():
            details = {f"data.{k}": v for k, v in serializer.errors.items()}
            lines = [f"{k}: {' '.join(str(m) for m in v)}" for k, v in details.items()]
            raise InvalidRequest("; ".join(lines), details=details)
        return dict(serializer.validated_data)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        Operation(
            "build",
            "Build changed packages into artifacts",
            BuildInput,
            lambda d: ["build", "--devhubalias", "devhub", "--branch", d["branch"],
                       "--artifactdir", "artifacts", *(["--diffcheck"] if d["diffcheck"] else []),
                       *(["--buildnumber", str(d["buildNumber"])] if d.get("buildNumber") else [])],
            lambda d: [_org("devhub", d["devhub"])],
            retries=1, backoff_seconds=30, timeout_seconds=3600,
        ),
        Operation(
            "quickbuild",
            "Build packages without validation (fast feedback)",
            BuildInput,
            lambda d: ["quickbuild", "--devhubalias", "devhub", "--branch", d["branch"],
                       *(["--diffcheck"] if d["diffcheck"] else [])],
            lambda d: [_org("devhub", d["devhub"])],
            retries=1, backoff_seconds=30, timeout_seconds=1800,
        ),
        Operation(
            "install",
            "Deploy artifacts to an environment's org",
            InstallInput,
            lambda d: ["install", "--targetorg", "target", "--artifactdir", d["artifactDir"],
                       *(["--skipifalreadyinstalled"] if d["skipIfAlreadyInstalled"] else [])],
            lambda d: [_org("target", d["targetOrg"])],
            ("owner", "application"),
            locks_environment=True,
            retries=2, backoff_seconds=60, timeout_seconds=3600,
        ),
        Operation(
            "validate",
            "Validate changes against an org",
            ValidateInput,
            lambda d: ["validate", "org", "--targetorg", "target", "--mode", d["mode"]],
            lambda d: [_org("target", d["targetOrg"])],
            retries=1, backoff_seconds=60, timeout_seconds=5400,
        ),
        Operation(
            "release",
            "Release a release definition to an org",
            ReleaseInput,
            lambda d: ["release", "--releasedefinition", d["releaseDefinition"], "--targetorg",
                       "target", *(["--dryrun"] if d["dryRun"] else [])],
            lambda d: [_org("target", d["targetOrg"])],
            ("owner", "application"),
            locks_environment=True,
            pool=Pool.LONG_RUNNING, retries=0, timeout_seconds=4 * 3600,
        ),
        Operation(
            "pool-prepare",
            "Prepare a pool of scratch orgs or sandboxes",
            PoolPrepareInput,
            lambda d: ["pool", "prepare", "--poolconfig", d["poolConfig"], "--targetdevhubusername",
                       "devhub"],
            lambda d: [_org("devhub", d["devhub"])],
            pool=Pool.LONG_RUNNING, retries=1, backoff_seconds=120, timeout_seconds=4 * 3600,
        ),
        Operation(
            "apextests",
            "Run Apex tests in an org",
            ApexTestsInput,
            lambda d: ["apextests", "trigger", "--targetorg", "target", "--testlevel",
                       d["testLevel"], *(["--package", d["package"]] if d.get("package") else [])],
            lambda d: [_org("target", d["targetOrg"])],
            pool=Pool.LONG_RUNNING, retries=1, backoff_seconds=60, timeout_seconds=3 * 3600,
        ),
        Operation(
            "noop", "Internal: does nothing (benchmarks, smoke tests)", NoopInput, None,
            retries=2, backoff_seconds=0.2, backoff_max_seconds=1, timeout_seconds=120,
        ),
    ]
}  # fmt: skip


def credential_items(op: Operation, data: dict) -> list[dict]:
    """What an execution's credential grant names: its orgs, and the checkout of its repository
    when that repository is a registered project (sfp runs in the checkout)."""
    from apps.projects.selectors import project_exists

    items = op.orgs(data)
    if op.command is not None and data.get("repository") and project_exists(data["repository"]):
        items.append(
            {"kind": "repository", "ref": {"project": data["repository"]}, "alias": SOURCE_ALIAS}
        )
    return items


def environment_lock_of(op: Operation, data: dict) -> tuple[str, str] | None:
    """The (repository, resource) lock an execution must hold while it runs, if any."""
    if op.locks_environment and data.get("environment"):
        return data["repository"], f"env:{data['environment']}"
    return None


def operation(name: str) -> Operation:
    found = OPERATIONS.get(name)
    if found is None:
        valid = ", ".join(sorted(OPERATIONS))
        raise InvalidRequest(
            f"Unknown task type {name!r}; valid types: {valid}",
            details={"type": [f"One of: {valid}."]},
        )
    return found
