#!/usr/bin/env python3
"""Holds every AWS call each function made in the test suite against the role `sam deploy`
generates for it, both ways: a call the role does not allow is DENIED (function, action,
resource named), and a grant no recorded call or declared platform need uses is UNUSED.
Either fails the check (exit 1).

    check_iam.py --template template.yaml --recording moto_recording [--parameter K=V …]
                 [--expected FILE]

The recording is moto_server's recorder log (scripts/test.sh writes it); calls signed by
an identity that is not a template function (the testkit's set-up, the CLI acting as an
operator) are skipped and counted.
"""

import argparse
import re
import sys
from collections import Counter, defaultdict

from calls import RecordingError, declared_needs, read_recording
from roles import TemplateError, function_roles, load_template

LEADING_KEYS = "dynamodb:LeadingKeys"
SUPPORTED_OPERATORS = ("ForAllValues:StringLike", "ForAllValues:StringEquals")


def _glob(pattern, text, case_sensitive=True):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case_sensitive else re.IGNORECASE) is not None


def _list(value):
    return value if isinstance(value, list) else [value]


def condition_holds(condition, call):
    """IAM's evaluation of the conditions this template uses; anything else is an error."""
    for operator, tests in (condition or {}).items():
        if operator not in SUPPORTED_OPERATORS:
            raise TemplateError(f"condition operator {operator} is not supported by the check")
        for key, patterns in tests.items():
            if key != LEADING_KEYS:
                raise TemplateError(f"condition key {key} is not supported by the check")
            values = [] if call.leading_key is None else [call.leading_key]
            exact = operator.endswith("StringEquals")
            # ForAllValues: every value matches some pattern (vacuously true with none).
            if not all(
                any((v == p) if exact else _glob(p, v) for p in _list(patterns)) for v in values
            ):
                return False
    return True


def statement_matches(statement, call):
    if "NotAction" in statement or "NotResource" in statement:
        raise TemplateError(f"{statement.get('Source')}: NotAction/NotResource is not supported")
    return (
        any(_glob(a, call.action, case_sensitive=False) for a in _list(statement["Action"]))
        and any(_glob(r, call.resource) for r in _list(statement["Resource"]))
        and condition_holds(statement.get("Condition"), call)
    )


def allowed(statements, call):
    matching = [s for s in statements if statement_matches(s, call)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


def unused_grants(statements, uses):
    """(source, action, resource) of each Allow no use needs, plus wildcard actions we wrote."""
    unused = []
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        for action in _list(statement["Action"]):
            if "*" in action and not statement.get("Managed"):
                where = ", ".join(_list(statement["Resource"]))
                unused.append((statement["Source"], action, f"{where} (a wildcard action: name each)"))
                continue
            for resource in _list(statement["Resource"]):
                single = dict(statement, Action=[action], Resource=[resource])
                if not any(statement_matches(single, use) for use in uses):
                    unused.append((statement["Source"], action, resource))
    return unused


def check(roles, recorded, needs):
    """A report: {"denied": …, "unused": …, "skipped": Counter, "checked": Counter}."""
    by_function = defaultdict(list)
    skipped = Counter()
    for call in recorded:
        if call.identity in roles:
            by_function[call.identity].append(call)
        else:
            skipped[call.identity or "(unsigned)"] += 1
    denied = Counter()
    for function, calls in by_function.items():
        for call in calls:
            if not allowed(roles[function], call):
                denied[(function, call.action, call.resource, call.leading_key)] += 1
    needs_by_function = defaultdict(list)
    for need in needs:
        needs_by_function[need.identity].append(need)
    unused = {}
    for function, statements in roles.items():
        uses = by_function[function] + needs_by_function[function]
        unused[function] = unused_grants(statements, uses)
    checked = Counter({f: len(c) for f, c in by_function.items()})
    return {"denied": denied, "unused": unused, "skipped": skipped, "checked": checked}


def render(report):
    lines = []
    checked = report["checked"]
    lines.append(
        f"IAM check: {sum(checked.values())} calls by functions, "
        f"{sum(report['skipped'].values())} by other identities (skipped)"
    )
    for function, count in sorted(checked.items()):
        lines.append(f"  checked  {function}: {count} calls")
    for identity, count in sorted(report["skipped"].items()):
        lines.append(f"  skipped  {identity}: {count} calls (not a template function)")
    grouped = defaultdict(list)
    for (function, action, resource, key), count in report["denied"].items():
        grouped[(function, action, resource)].append((key, count))
    for (function, action, resource), keys in sorted(grouped.items()):
        count = sum(c for _, c in keys)
        example = next((k for k, _ in keys if k is not None), None)
        suffix = f" (leading key e.g. {example!r})" if example else ""
        lines.append(f"DENIED   {function}: {action} on {resource} x{count}{suffix}")
    for function, grants in sorted(report["unused"].items()):
        for source, action, resource in grants:
            lines.append(f"UNUSED   {function}: {source} grants {action} on {resource}")
    return "\n".join(lines)


def findings(report):
    """Every finding as (kind, function, action, resource)."""
    found = {("DENIED", f, a, r) for f, a, r, _ in report["denied"]}
    for function, grants in report["unused"].items():
        found.update(("UNUSED", function, a, r) for _, a, r in grants)
    return found


def read_expected(path):
    """Findings known until a change lands elsewhere: `KIND Function action resource  # why`."""
    expected = set()
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.split("#", 1)[0].strip()
            if line:
                kind, function, action, resource = line.split()
                expected.add((kind, function, action, resource))
    return expected


def failed(report, expected=frozenset()):
    return bool(findings(report) - expected) or bool(expected - findings(report))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", required=True)
    parser.add_argument("--recording", required=True)
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--expected", help="findings that do not fail the check, each of which must occur")
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.parameter)
    try:
        template = load_template(args.template)
        roles = function_roles(template, parameters)
        report = check(roles, read_recording(args.recording, template), declared_needs(template))
    except (TemplateError, RecordingError) as error:
        print(f"IAM check could not run: {error}", file=sys.stderr)
        return 2
    print(render(report))
    expected = read_expected(args.expected) if args.expected else set()
    for finding in sorted(expected & findings(report)):
        print("EXPECTED " + " ".join(finding) + f" (listed in {args.expected})")
    for finding in sorted(expected - findings(report)):
        print("STALE    " + " ".join(finding) + f": no longer found; delete it from {args.expected}")
    if failed(report, expected):
        print("IAM check FAILED: fix template.yaml's policies (or the calls).", file=sys.stderr)
        return 1
    print("IAM check passed: every call allowed, every grant used.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
