"""The layout the product promises: every app installed, every module opening with a docstring."""

import ast
from pathlib import Path

from django.apps import apps as installed

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_APPS = [
    "core",
    "accounts",
    "projects",
    "environments",
    "integrations",
    "tasks",
    "builds",
    "live",
]


def test_every_product_app_is_installed_and_documented():
    for label in PRODUCT_APPS:
        config = installed.get_app_config(label)
        assert config.name == f"apps.{label}"
        assert (config.module.__doc__ or "").strip(), f"apps/{label} has no docstring"
        assert (ROOT / "tests" / label).is_dir(), f"tests/{label} does not mirror apps/{label}"


def test_every_python_module_opens_with_a_docstring():
    missing = []
    for folder in ("apps", "sfpserver", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            if not ast.get_docstring(tree):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules without a docstring: {missing}"
