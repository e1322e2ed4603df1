#!/usr/bin/env python3
"""moto_server with its request recorder on, one line per request even under concurrency.

    moto_recording_server.py RECORDING_FILE -H 127.0.0.1 -p PORT

moto's recorder (MOTO_ENABLE_RECORDING, /moto-api/recorder/…) appends each request to a
file, but in two unlocked writes: the threaded server can interleave concurrent entries.
This wraps it in a lock, then runs moto_server unchanged.
"""

import os
import sys
import threading

recording = sys.argv.pop(1)
os.environ["MOTO_ENABLE_RECORDING"] = "True"
os.environ["MOTO_RECORDER_FILEPATH"] = recording
open(recording, "w").close()

from moto.moto_api import recorder  # noqa: E402  (after the environment is set)
from moto.server import main  # noqa: E402

_lock = threading.Lock()
_record = recorder._record_request


def _record_locked(*args, **kwargs):
    with _lock:
        _record(*args, **kwargs)


recorder._record_request = _record_locked
main(sys.argv[1:])
