#!/usr/bin/env python3
"""A stand-in for the Salesforce CLI's `sf org login sfdx-url`, the one `sf` command a worker
runs: it reads the SFDX auth URL from `--sfdx-url-file`, refuses a malformed one as sf does, and
stores the org in `$HOME/.sfdx` under its alias (alias.json + <username>.json), where the fake
sfp CLI looks it up, as the real sfp finds orgs authorised in the sf CLI. It never prints the URL.
"""

import json
import os
import re
import sys

# The pattern @salesforce/core's AuthInfo.parseSfdxAuthUrl accepts (a prefix match, as there).
AUTH_URL = re.compile(
    r"^force://(?P<client>[a-zA-Z0-9._-]+):(?P<secret>[a-zA-Z0-9._-]*):"
    r"(?P<refresh>[a-zA-Z0-9._-]+={0,2})@(?P<host>[a-zA-Z0-9._-]+)"
)


def command() -> str:
    """How tests point SFP_SF_CLI_PATH at this script."""
    return f"{sys.executable} {os.path.abspath(__file__)}"


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print("@salesforce/cli/2.150.6 linux-x64 node-v22.19.0 (fake)")
        return 0
    if argv[:3] != ["org", "login", "sfdx-url"]:
        print(
            f"Error (1): fake sf only knows 'org login sfdx-url', not {argv[:3]}", file=sys.stderr
        )
        return 1

    def flag(name: str) -> str | None:
        return argv[argv.index(name) + 1] if name in argv else None

    path, alias = flag("--sfdx-url-file"), flag("--alias")
    if not path or not os.path.exists(path):
        print(f"Error (1): No such file: {path}", file=sys.stderr)
        return 1
    with open(path) as handle:
        match = AUTH_URL.match(handle.read().strip())
    if match is None:
        print(
            "Error (1): Invalid SFDX authorization URL. Must be in the format "
            '"force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl>".',
            file=sys.stderr,
        )
        return 1
    username = f"ci@{match['host']}"
    store = os.path.join(os.environ["HOME"], ".sfdx")
    os.makedirs(store, mode=0o700, exist_ok=True)
    aliases_path = os.path.join(store, "alias.json")
    aliases = json.load(open(aliases_path)) if os.path.exists(aliases_path) else {"orgs": {}}
    aliases["orgs"][alias or username] = username
    with open(aliases_path, "w") as handle:
        json.dump(aliases, handle)
    with open(os.path.join(store, f"{username}.json"), "w") as handle:
        json.dump({"username": username, "instanceUrl": f"https://{match['host']}",
                   "refreshToken": match["refresh"],
                   "isDevHub": "--set-default-dev-hub" in argv}, handle)  # fmt: skip
    print(f"Successfully authorized {username} with org ID 00D000000000001")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
