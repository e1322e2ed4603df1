"""Suite-wide leak scan: no caller phone, email, name or transcript in any log line of
nphooks' code, any SQS message attribute (the DLQs' failure reasons included), or any
DynamoDB attribute other than the stored envelope, across the whole test suite.

The caller data is what the tests themselves sent: every queue message recorded at the
moto endpoint (scripts/lib/moto_server.py --record) whose body is an nphooks envelope
names its caller, and those values are then searched for everywhere else.

    python scripts/leak_scan.py --recording RECORDING.jsonl --logs LOG_DIR
"""

import argparse
import base64
import glob
import json
import os
import sys

MIN_LENGTH = 5  # shorter values ("42", "Bo") also occur in ids and words
OWN_TARGETS = ("receiver", "crm", "email", "slack", "notify", "callback", "nphooks")
STORED_ENVELOPE = ("envelope", ":envelope")  # the receiver keeps the envelope for replay


def _body(entry):
    text = entry.get("body") or ""
    if entry.get("body_encoded"):
        text = base64.b64decode(text).decode("utf-8", "replace")
    return text


def _target(entry):
    for key, value in (entry.get("headers") or {}).items():
        if key.lower() == "x-amz-target":
            return value
    return ""


def sqs_messages(recording):
    """(body, {attribute: value}) of every message sent to any queue."""
    for entry in recording:
        target = _target(entry)
        if target not in ("AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch"):
            continue
        request = json.loads(_body(entry) or "{}")
        for message in request.get("Entries") or [request]:
            attributes = {
                name: value.get("StringValue", "")
                for name, value in (message.get("MessageAttributes") or {}).items()
            }
            yield message.get("MessageBody", ""), attributes


def table_values(recording):
    """(attribute, value) of every string DynamoDB write, but the stored envelope."""
    for entry in recording:
        target = _target(entry)
        if not target.startswith("DynamoDB_20120810.") or target.endswith(("GetItem", "Scan", "Query")):
            continue
        request = json.loads(_body(entry) or "{}")
        values = dict(request.get("Item") or {})
        values.update(request.get("ExpressionAttributeValues") or {})
        for name, value in values.items():
            if name not in STORED_ENVELOPE and isinstance(value, dict) and "S" in value:
                yield name, value["S"]


def caller_values(bodies):
    """The caller's name, phone, email and transcript of every envelope among `bodies`."""
    found = set()
    for body in bodies:
        try:
            data = json.loads(body)["webhook"]["data"]
        except (ValueError, KeyError, TypeError):
            continue
        if not isinstance(data, dict):
            continue
        caller = data.get("caller") if isinstance(data.get("caller"), dict) else {}
        for value in (caller.get("name"), caller.get("phone"), caller.get("email"), data.get("transcript")):
            if isinstance(value, str) and len(value.strip()) >= MIN_LENGTH:
                found.add(value.strip())
    return found


def own_log_lines(log_dir):
    for path in sorted(glob.glob(os.path.join(log_dir, "*.jsonl"))):
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    target = json.loads(line).get("target", "")
                except ValueError:
                    continue
                if target.startswith(OWN_TARGETS):
                    yield line


def scan(recording, log_lines):
    """Returns (leaks, counts): each leak names where and which value."""
    messages = list(sqs_messages(recording))
    values = caller_values(body for body, _ in messages)
    leaks = []
    checked = {"caller values": len(values), "messages": len(messages), "table values": 0, "log lines": 0}

    def look(where, text):
        for value in values:
            if value in text:
                leaks.append(f"{where}: {value!r}")

    for _, attributes in messages:
        for name, text in attributes.items():
            look(f"message attribute {name}", text)
    for name, text in table_values(recording):
        checked["table values"] += 1
        look(f"table attribute {name}", text)
    for line in log_lines:
        checked["log lines"] += 1
        look("log line", line)
    return leaks, checked


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recording", required=True)
    parser.add_argument("--logs", required=True)
    args = parser.parse_args()
    with open(args.recording, encoding="utf-8", errors="replace") as lines:
        recording = [json.loads(line) for line in lines if line.strip()]
    leaks, checked = scan(recording, own_log_lines(args.logs))
    summary = ", ".join(f"{count} {what}" for what, count in checked.items())
    if checked["caller values"] == 0 or checked["log lines"] == 0:
        print(f"leak scan: nothing to check ({summary}): the recording or the logs are missing")
        return 1
    for leak in sorted(set(leaks)):
        print(f"LEAK {leak}")
    print(f"leak scan: {summary}; {len(set(leaks))} leaks")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
