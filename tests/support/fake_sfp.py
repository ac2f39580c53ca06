#!/usr/bin/env python3
"""A stand-in for the `sfp` CLI that behaves like it: realistic output, progress lines, exit
codes, slowness, hangs, crashes, a slow install with a process tree (`slow-tree`), a SIGTERM it ignores, flakiness across attempts, and a run held
halfway until a test releases it.

Invoked as `fake_sfp.py [--scenario NAME] [--state FILE] <sfp subcommand and flags…>`; tests
point SFP_CLI_PATH at "python fake_sfp.py --scenario NAME". Like the real sfp it needs every
alias it is given (`--targetorg target`, `--devhubalias devhub`) authorised in the sf CLI's store
under $HOME (the worker runs `sf org login sfdx-url` first; tests use fake_sf.py), and fails like
sfp does when one is missing. It never prints a credential.
"""

import json
import os
import signal
import subprocess
import sys
import time


def out(line: str, delay: float = 0.0) -> None:
    print(line, flush=True)
    if delay:
        time.sleep(delay)


def wait_for_release(state: str | None, timeout: float = 120.0) -> bool:
    """The `held` scenario stops halfway until its --state file exists (a test releases it)."""
    out("Step: Waiting to be released")
    deadline = time.monotonic() + timeout
    while not (state and os.path.exists(state)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main(argv: list[str]) -> int:
    scenario, state = "success", None
    while argv and argv[0] in ("--scenario", "--state"):
        if argv[0] == "--scenario":
            scenario = argv[1]
        else:
            state = argv[1]
        argv = argv[2:]
    if argv == ["--version"]:
        out("@flxbl-io/sfp/39.2.2 linux-x64 node-v22.19.0 (fake)")
        return 0
    command = " ".join(a for a in argv if not a.startswith("-"))[:40] or "help"
    aliases_path = os.path.join(os.environ.get("HOME", "/nonexistent"), ".sfdx", "alias.json")
    authorised = json.load(open(aliases_path))["orgs"] if os.path.exists(aliases_path) else {}
    for flag in ("--targetorg", "--devhubalias", "--targetdevhubusername"):
        if flag in argv:
            alias = argv[argv.index(flag) + 1]
            if alias not in authorised:
                print(f"ERROR: No authorization information found for {alias}.", file=sys.stderr)
                return 1
            out(f"Using {alias} ({authorised[alias]}), authorised in the sf CLI")
    secrets_seen = [k for k in os.environ if "AUTH_URL" in k or k.endswith("TOKEN")]
    out(f"sfp  -- {command} -- (fake) workspace={os.getcwd()} secrets_in_env={len(secrets_seen)}")
    if os.path.exists("sfdx-project.json"):  # run inside a checkout, as the real worker does
        with open("BRANCH") if os.path.exists("BRANCH") else open(os.devnull) as branch:
            out(f"Project sfdx-project.json found (checkout of {branch.read().strip() or '?'})")

    if scenario == "flaky" and state:
        attempts = int(open(state).read()) if os.path.exists(state) else 0
        with open(state, "w") as handle:
            handle.write(str(attempts + 1))
        if attempts == 0:
            print("ERROR: Unable to connect to the org (socket hang up)", file=sys.stderr)
            return 2
    if scenario == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        out(f"Step: Waiting on a long deployment (child {child.pid})")
        time.sleep(600)
    if scenario == "ignore-term":
        signal.signal(signal.SIGTERM, lambda *_: out("Received SIGTERM: ignoring it"))
        out("Step: Deploying and ignoring SIGTERM")
        while True:
            time.sleep(0.1)
    if scenario == "slow-tree":  # an install-like run with a process tree: ~4 s, then success
        tag = argv[argv.index("--artifactdir") + 1] if "--artifactdir" in argv else "?"
        sleeper = "import sys, time; time.sleep(float(sys.argv[1]))"
        subprocess.Popen([sys.executable, "-c", sleeper, "4", f"sfp-grandchild {tag}"])
        # One that leaves the process group and session, as a daemonising helper would.
        subprocess.Popen(
            [sys.executable, "-c", sleeper, "4", f"sfp-grandchild {tag}"], start_new_session=True
        )
        for step in range(8):
            out(f"[{step + 1}/8] Installing {tag}", 0.5)
        out("Step: Finished")
        return 0
    if scenario == "crash":
        out("Step: Resolving dependencies")
        os.kill(os.getpid(), signal.SIGSEGV)

    delay = 0.5 if scenario == "slow" else 0.01
    packages = ["core-crm", "sales-ext", "service-ext", "integrations"]
    out("Step: Fetching packages", delay)
    for index, package in enumerate(packages, start=1):
        out(f"[{index}/{len(packages)}] Processing {package}", delay)
        if scenario == "held" and index == len(packages) // 2:
            if not wait_for_release(state):
                print("ERROR: Timed out waiting to be released", file=sys.stderr)
                return 3
    if scenario == "fail":
        print("ERROR: Deployment failed: 3 component errors in sales-ext", file=sys.stderr)
        print("  ApexClass OpportunityService: Variable does not exist: amount", file=sys.stderr)
        return 1
    out("Step: Finished")
    out("Progress: 100%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
