"""The IAM check can fail: run with `python -m unittest discover -s scripts/iam`."""

import base64
import json
import os
import subprocess
import unittest

from calls import Call, parse_entry
from check_iam import check, failed, render
from roles import function_roles, load_template

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/IdempotencyTable"
CRM_QUEUE = "arn:aws:sqs:us-east-1:123456789012:CrmQueue"
# The commit before the fix: DynamoDBWritePolicy, which has no DeleteItem.
BEFORE_FIX = "e9d45b2"


def template(text=None):
    if text is None:
        return load_template(os.path.join(ROOT, "template.yaml"))
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(text)


def delete(function, key):
    """A DeleteItem: how the receiver abandons a delivery record it began (and how the
    processors gave a claim up before a released claim became `retrying`)."""
    return Call(function, "dynamodb:DeleteItem", TABLE, key)


def release(function, key):
    """A processor gives its claim up after a transient failure: UpdateItem to `retrying`."""
    return Call(function, "dynamodb:UpdateItem", TABLE, key)


class ChecksEachCall(unittest.TestCase):
    def setUp(self):
        self.roles = function_roles(template())

    def test_given_todays_roles_when_each_function_releases_its_own_claim_then_allowed(self):
        calls = [delete("ReceiverFunction", "call.ended#c1"), release("CrmFunction", "crm#call.ended#c1")]
        report = check(self.roles, calls, [])
        self.assertEqual(report["denied"], {}, render(report))

    def test_given_todays_roles_when_a_processor_deletes_its_own_claim_then_denied(self):
        call = delete("CrmFunction", "crm#call.ended#c1")
        report = check(self.roles, [call], [])
        self.assertIn(("CrmFunction", "dynamodb:DeleteItem", TABLE, "crm#call.ended#c1"), report["denied"])

    def test_given_a_processor_when_it_writes_another_integrations_claim_then_denied(self):
        call = Call("CrmFunction", "dynamodb:PutItem", TABLE, "slack#call.ended#c1")
        report = check(self.roles, [call], [])
        self.assertIn(("CrmFunction", "dynamodb:PutItem", TABLE, "slack#call.ended#c1"), report["denied"])

    def test_given_the_rate_limiter_item_then_only_its_own_is_allowed(self):
        own = Call("SlackFunction", "dynamodb:UpdateItem", TABLE, "rate#slack")
        other = Call("SlackFunction", "dynamodb:UpdateItem", TABLE, "rate#crm")
        report = check(self.roles, [own, other], [])
        self.assertEqual(list(report["denied"]), [("SlackFunction", "dynamodb:UpdateItem", TABLE, "rate#crm")])

    def test_given_the_delete_line_removed_when_the_receiver_releases_then_the_call_is_named(self):
        with open(os.path.join(ROOT, "template.yaml"), encoding="utf-8") as file:
            text = file.read()
        line = "Action: [dynamodb:PutItem, dynamodb:DeleteItem]\n"
        self.assertIn(line, text)
        without = text.replace(line, "Action: [dynamodb:PutItem]\n", 1)
        report = check(function_roles(template(without)), [delete("ReceiverFunction", "call.ended#c1")], [])
        self.assertTrue(failed(report))
        self.assertIn(
            f"DENIED   ReceiverFunction: dynamodb:DeleteItem on {TABLE} x1", render(report)
        )

    def test_given_a_grant_no_call_uses_then_it_is_reported_unused(self):
        report = check(self.roles, [], [])
        unused = {(a, r) for _, a, r in report["unused"]["ReceiverFunction"]}
        self.assertIn(("dynamodb:DeleteItem", TABLE), unused)
        self.assertTrue(failed(report))

    def test_given_a_call_on_a_resource_outside_the_template_then_denied(self):
        call = Call("CrmFunction", "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:other", None)
        self.assertTrue(check(self.roles, [call], [])["denied"])

    def test_given_a_call_by_another_identity_then_it_is_skipped_and_counted(self):
        report = check(self.roles, [Call("testkit", "dynamodb:Scan", TABLE, None)], [])
        self.assertEqual(report["skipped"]["testkit"], 1)
        self.assertEqual(report["denied"], {})


class ExpectedFindings(unittest.TestCase):
    def test_given_an_expected_finding_then_it_passes_only_while_it_still_occurs(self):
        roles = function_roles(template())
        other = Call("CrmFunction", "dynamodb:PutItem", TABLE, "slack#k")
        uses = [Call("CrmFunction", "dynamodb:PutItem", TABLE, "crm#k")]
        expected = {("DENIED", "CrmFunction", "dynamodb:PutItem", TABLE)}
        denied = check(roles, uses + [other], [])
        denied["unused"] = {}
        self.assertFalse(failed(denied, expected))
        cleared = check(roles, uses, [])
        cleared["unused"] = {}
        self.assertTrue(failed(cleared, expected), "a stale expectation fails the check")


class BeforeTheFix(unittest.TestCase):
    def test_given_the_template_before_the_fix_then_delete_item_is_denied_for_its_callers(self):
        shown = subprocess.run(
            ["git", "-C", ROOT, "show", f"{BEFORE_FIX}:template.yaml"], capture_output=True, text=True
        )
        if shown.returncode != 0:
            self.skipTest(f"commit {BEFORE_FIX} is not in this clone (shallow?)")
        roles = function_roles(template(shown.stdout), {"ExistingSecretArn": ""})
        calls = [delete("ReceiverFunction", "call.ended#c1"), delete("CrmFunction", "crm#call.ended#c1")]
        denied = {(f, a) for f, a, _, _ in check(roles, calls, [])["denied"]}
        self.assertEqual(
            denied, {("ReceiverFunction", "dynamodb:DeleteItem"), ("CrmFunction", "dynamodb:DeleteItem")}
        )


class ReadsTheRecording(unittest.TestCase):
    def entry(self, key_id, target, body):
        return {
            "headers": {
                "Authorization": f"AWS4-HMAC-SHA256 Credential={key_id}/20261127/us-east-1/x/aws4_request, S=1",
                "X-Amz-Target": target,
            },
            "method": "POST",
            "url": "http://127.0.0.1:5000/",
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "body_encoded": True,
        }

    def test_given_a_claim_then_function_action_table_and_leading_key_are_read(self):
        body = {"TableName": "idem-x-1-0", "Item": {"pk": {"S": "crm#call.ended#c1"}}}
        call = parse_entry(self.entry("CrmFunction", "DynamoDB_20120810.PutItem", body), template())
        self.assertEqual(call, Call("CrmFunction", "dynamodb:PutItem", TABLE, "crm#call.ended#c1"))

    def test_given_queue_names_then_each_maps_to_its_template_queue(self):
        for name, logical in [("crm-once-1-2", "CrmQueue"), ("crm-dlq-once-1-2", "CrmDeadLetterQueue")]:
            body = {"QueueUrl": f"http://127.0.0.1:5000/123456789012/{name}"}
            call = parse_entry(self.entry("ReceiverFunction", "AmazonSQS.SendMessage", body), template())
            self.assertEqual(call.resource, f"arn:aws:sqs:us-east-1:123456789012:{logical}")

    def test_given_a_secret_arn_then_it_maps_to_the_template_secret(self):
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:SlackSecret-template-1-0-Ab12Cd"
        call = parse_entry(
            self.entry("SlackFunction", "secretsmanager.GetSecretValue", {"SecretId": arn}), template()
        )
        self.assertEqual(
            call.resource, "arn:aws:secretsmanager:us-east-1:123456789012:secret:SlackSecret-AbCdEf"
        )


if __name__ == "__main__":
    unittest.main()
