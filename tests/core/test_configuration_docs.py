"""Every environment variable the code reads is documented in the README's configuration table."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READS = [
    re.compile(r"""env\.(?:str|bool|int|float|list|path|db_url|json)\(\s*["']([A-Z][A-Z0-9_]+)"""),
    re.compile(r"""os\.environ(?:\.get|\.setdefault)?\(\s*["']([A-Z][A-Z0-9_]+)"""),
    re.compile(r"""os\.environ\[\s*["']([A-Z][A-Z0-9_]+)"""),
]
# Read by the code but not configuration an operator sets. (deploy/*.py counts: gunicorn's config.)
_NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE"}


def variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for folder in ("apps", "sfpserver", "deploy"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            for pattern in _READS:
                names.update(pattern.findall(text))
    for script in (ROOT / "scripts").glob("*.sh"):
        names.update(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)(?::-)", script.read_text()))
    return names - _NOT_CONFIGURATION


def documented_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))


def test_every_variable_is_documented():
    undocumented = variables_read_by_the_code() - documented_variables()
    assert not undocumented, f"add these to the README configuration table: {undocumented}"


def test_no_documented_variable_is_stale():
    stale = documented_variables() - variables_read_by_the_code()
    assert not stale, f"the README documents variables nothing reads: {stale}"
