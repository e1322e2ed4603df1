"""The AWS calls recorded at the moto endpoint, as (identity, IAM action, resource ARN,
DynamoDB leading key), with the test suite's resource names mapped to the template's.

Naming (crates/nphooks-testkit): table `idem-…` is IdempotencyTable; queue `crm-dlq-…` is
CrmDeadLetterQueue and `crm-…` CrmQueue (likewise email, slack, notify, callback); a secret named
`<LogicalId>-…` is that template secret. Anything else a function touches is reported as
not a template resource, which the check denies.
"""

import base64
import json
from collections import namedtuple
from urllib.parse import urlparse

from roles import ACCOUNT, PARTITION, REGION, resource_arn

Call = namedtuple("Call", "identity action resource leading_key")

INTEGRATIONS = {"crm": "Crm", "email": "Email", "slack": "Slack", "notify": "Notify", "callback": "Callback"}

# X-Amz-Target prefixes of the JSON protocols, and the IAM service they belong to.
TARGETS = {
    "AmazonSQS": "sqs",
    "DynamoDB_20120810": "dynamodb",
    "secretsmanager": "secretsmanager",
}
# SQS authorizes a batch call by the action of its single form (the SQS Developer Guide,
# "Amazon SQS batch actions": the same permissions as the single action).
SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}

# REST calls (method, path prefix) → IAM action.
REST = [("POST", "/v2/email/outbound-emails", "ses:SendEmail"),
        ("POST", "/v2/email/identities", "ses:CreateEmailIdentity")]


class RecordingError(Exception):
    """A recorded request this check cannot attribute to an action."""


def _header(headers, name):
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def identity_of(headers):
    """The access key id in a SigV4 Authorization header, or None when unsigned."""
    authorization = _header(headers, "Authorization") or ""
    marker = "Credential="
    if marker not in authorization:
        return None
    return authorization.split(marker, 1)[1].split("/", 1)[0]


def template_queue(name, template):
    integration, _, rest = name.partition("-")
    prefix = INTEGRATIONS.get(integration)
    if prefix is None:
        return None
    logical = f"{prefix}DeadLetterQueue" if rest.startswith("dlq-") else f"{prefix}Queue"
    return logical if logical in template["Resources"] else None


def template_resource(kind, name, template):
    """The logical id a test resource stands for, or None."""
    if kind == "AWS::SQS::Queue":
        return template_queue(name, template)
    if kind == "AWS::DynamoDB::Table":
        tables = [k for k, r in template["Resources"].items() if r["Type"] == kind]
        return tables[0] if name.startswith("idem-") and len(tables) == 1 else None
    if kind == "AWS::SecretsManager::Secret":
        logical = name.split("-", 1)[0]
        resource = template["Resources"].get(logical, {})
        return logical if resource.get("Type") == kind else None
    return None


def _arn(kind, name, template):
    logical = template_resource(kind, name, template)
    if logical is None:
        service = kind.split("::")[1].lower()
        return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:not-a-template-resource/{name}"
    return resource_arn(logical, kind)


def _secret_name(secret_id):
    if secret_id.startswith("arn:"):
        name = secret_id.split(":secret:", 1)[1]
        return name.rsplit("-", 1)[0]  # the 6-character suffix Secrets Manager adds
    return secret_id


def _hash_key(template):
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::DynamoDB::Table":
            for element in resource["Properties"]["KeySchema"]:
                if element["KeyType"] == "HASH":
                    return element["AttributeName"]
    return "pk"


def _json_call(service, operation, body, template):
    """(resource ARN, leading key) of one JSON-protocol call."""
    if service == "sqs":
        if "QueueUrl" in body:
            name = urlparse(body["QueueUrl"]).path.rsplit("/", 1)[-1]
        elif "QueueName" in body:
            name = body["QueueName"]
        else:
            return "*", None
        return _arn("AWS::SQS::Queue", name, template), None
    if service == "dynamodb":
        if "TableName" not in body:
            return "*", None
        item = body.get("Item") or body.get("Key") or {}
        value = item.get(_hash_key(template), {})
        leading = next(iter(value.values()), None) if isinstance(value, dict) else None
        return _arn("AWS::DynamoDB::Table", body["TableName"], template), leading
    if service == "secretsmanager":
        if "SecretId" not in body:
            return "*", None
        name = _secret_name(body["SecretId"])
        return _arn("AWS::SecretsManager::Secret", name, template), None
    raise RecordingError(f"{service}.{operation}: no resource rule")


def parse_entry(entry, template):
    """One recorder line → a Call, or None for moto's own API."""
    url = urlparse(entry["url"])
    if url.path.startswith("/moto-api"):
        return None
    headers = entry.get("headers", {})
    identity = identity_of(headers)
    body_text = entry.get("body") or ""
    if entry.get("body_encoded"):
        body_text = base64.b64decode(body_text).decode("utf-8", "replace")
    target = _header(headers, "X-Amz-Target")
    if target:
        prefix, operation = target.rsplit(".", 1)
        service = TARGETS.get(prefix)
        if service is None:
            raise RecordingError(f"unknown X-Amz-Target {target}")
        body = json.loads(body_text or "{}")
        resource, leading = _json_call(service, operation, body, template)
        action = SQS_BATCH_ACTIONS.get(operation, operation) if service == "sqs" else operation
        return Call(identity, f"{service}:{action}", resource, leading)
    for method, path, action in REST:
        if entry["method"] == method and url.path.startswith(path):
            resource = f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/*"
            if action == "ses:SendEmail":
                sender = json.loads(body_text or "{}").get("FromEmailAddress", "")
                domain = sender.rsplit("@", 1)[-1].strip(" >")
                resource = f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/{domain}"
            return Call(identity, action, resource, None)
    return Call(identity, f"unknown:{entry['method']} {url.path}", "*", None)


def read_recording(path, template):
    calls = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                call = parse_entry(json.loads(line), template)
            except (ValueError, KeyError) as error:
                raise RecordingError(f"{path}:{number}: unreadable entry ({error})") from error
            if call is not None:
                calls.append(call)
    return calls


def declared_needs(template):
    """Calls the platform makes as a function, which no test can record: the SQS event
    source mapping polls and deletes on its queue, and Lambda writes the function's logs."""
    needs = []
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        group = properties.get("LoggingConfig", {}).get("LogGroup", {})
        group = group.get("Ref") if isinstance(group, dict) else None
        if group is None:
            raise RecordingError(f"{logical}: no LoggingConfig.LogGroup !Ref to check logs against")
        arn = resource_arn(group, "AWS::Logs::LogGroup")
        for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"):
            needs.append(Call(logical, action, arn, None))
        for event in properties.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue = event["Properties"]["Queue"]["Fn::GetAtt"]
            queue = queue[0] if isinstance(queue, list) else queue.split(".")[0]
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                needs.append(Call(logical, action, resource_arn(queue, "AWS::SQS::Queue"), None))
    return needs
