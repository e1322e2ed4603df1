#!/usr/bin/env python3
"""moto_server, made to keep two of AWS's rules the tests rely on.

    moto_server.py [--record RECORDING_FILE] -H 127.0.0.1 -p PORT

1. One data-plane call at a time per service, as DynamoDB serialises conditional writes
   to one item and SQS hands a message to one receiver. moto's threaded server does
   neither: two concurrent conditional PutItems on one key can both succeed (seen as two
   accepted begins and two effect claims won under CI load), and two concurrent
   ReceiveMessages on one queue race in its redrive path. A long-polling ReceiveMessage
   polls without the lock, so it never holds up the other calls.
2. With --record, moto's request recorder (MOTO_ENABLE_RECORDING) on, one line per request
   even under concurrency: moto appends each entry in two unlocked writes.

Everything else is moto_server unchanged.
"""

import functools
import os
import sys
import threading
import time

if len(sys.argv) > 2 and sys.argv[1] == "--record":
    recording = sys.argv[2]
    del sys.argv[1:3]
    os.environ["MOTO_ENABLE_RECORDING"] = "True"
    os.environ["MOTO_RECORDER_FILEPATH"] = recording
    open(recording, "w").close()
else:
    recording = None

from moto.dynamodb.models import DynamoDBBackend  # noqa: E402  (after the environment is set)
from moto.server import main  # noqa: E402
from moto.sqs.models import SQSBackend  # noqa: E402


def in_turn(lock, cls, names):
    for name in names:
        original = getattr(cls, name)

        @functools.wraps(original)
        def locked(*args, __original=original, **kwargs):
            with lock:
                return __original(*args, **kwargs)

        setattr(cls, name, locked)


in_turn(threading.RLock(), DynamoDBBackend, [
    "put_item", "update_item", "delete_item", "get_item", "query", "scan",
    "transact_write_items", "batch_get_item", "batch_write_item", "transact_get_items",
])

_sqs = threading.RLock()
in_turn(_sqs, SQSBackend, [
    "send_message", "send_message_batch", "delete_message", "delete_message_batch",
    "change_message_visibility", "change_message_visibility_batch", "purge_queue",
    "get_queue_attributes",
])
_receive = SQSBackend.receive_message


@functools.wraps(_receive)
def receive_in_turn(self, queue_name, count, wait_seconds_timeout, *args, **kwargs):
    deadline = time.monotonic() + wait_seconds_timeout
    while True:
        with _sqs:
            result = _receive(self, queue_name, count, 0, *args, **kwargs)
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(0.02)


SQSBackend.receive_message = receive_in_turn

if recording is not None:
    from moto.moto_api import recorder

    _record_lock = threading.Lock()
    _record = recorder._record_request

    def _record_locked(*args, **kwargs):
        with _record_lock:
            _record(*args, **kwargs)

    recorder._record_request = _record_locked

main(sys.argv[1:])
