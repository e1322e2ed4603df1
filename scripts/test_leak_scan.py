"""The leak scan finds caller data wherever it is planted, and only there."""

import json
import unittest

from leak_scan import scan


def send(body, **attributes):
    request = {
        "QueueUrl": "http://moto/123/crm-dlq-x",
        "MessageBody": body,
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }
    return {"headers": {"X-Amz-Target": "AmazonSQS.SendMessage"}, "body": json.dumps(request)}


def put(**item):
    request = {"TableName": "idem-x", "Item": {k: {"S": v} for k, v in item.items()}}
    return {"headers": {"X-Amz-Target": "DynamoDB_20120810.PutItem"}, "body": json.dumps(request)}


ENVELOPE = json.dumps({"v": 1, "webhook": {"event": "call.ended", "data": {
    "call_id": "c1", "caller": {"name": "Dana Whitfield", "phone": "+15551234567", "email": "dana@example.com"},
    "transcript": "I would like a demo on Tuesday"}}})
CLEAN_LOG = '{"target":"nphooks_processor::runtime","fields":{"message":"sent","call_id":"c1"}}'


class LeakScanTest(unittest.TestCase):
    def test_clean_suite_has_no_leaks(self):
        leaks, checked = scan([send(ENVELOPE, event="call.ended"), put(pk="crm#x", envelope=ENVELOPE)], [CLEAN_LOG])
        self.assertEqual(leaks, [])
        self.assertEqual(checked["caller values"], 4)
        self.assertEqual(checked["log lines"], 1)

    def test_caller_data_in_a_dlq_attribute_is_found(self):
        leaks, _ = scan([send(ENVELOPE, failure_reason="422: dana@example.com exists")], [CLEAN_LOG])
        self.assertEqual(leaks, ["message attribute failure_reason: 'dana@example.com'"])

    def test_caller_data_in_a_log_line_or_claim_is_found(self):
        leaky = CLEAN_LOG.replace("sent", "sent to +15551234567")
        leaks, _ = scan([send(ENVELOPE), put(pk="crm#x", reason="Dana Whitfield rejected")], [leaky])
        self.assertIn("log line: '+15551234567'", leaks)
        self.assertIn("table attribute reason: 'Dana Whitfield'", leaks)


if __name__ == "__main__":
    unittest.main()
