"""A local Lambda Runtime API (the 2018-06-01 interface a `provided.al2023` function polls),
moto setup as `nphooks init-local` does it, signed API Gateway events, and what /proc says
about the function's process. Shared by `cpu-per-webhook` and `cold-start`.
"""

import hashlib
import hmac
import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Made per run: the published test secret is refused outside local mode.
TEST_SECRET = "bench-" + uuid.uuid4().hex  # random per run: no published value
TEST_API_KEY = "np_bench_" + uuid.uuid4().hex
TABLE = "nphooks-idempotency"
# The receiver's queues, read from template.yaml (`X_QUEUE_URL: !Ref XQueue`), so a new
# integration needs no edit here: {"crm": "CRM", ...}.
QUEUES = {
    var.lower(): var
    for var in re.findall(r"^\s+([A-Z]+)_QUEUE_URL: !Ref \w+Queue$",
                          (ROOT / "template.yaml").read_text(), re.MULTILINE)
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PREFIX = "/2018-06-01/runtime"
# The virtualenv scripts/lib/stand-ins.sh installs moto into (NPHOOKS_VENV overrides).
VENV = Path(os.environ.get("NPHOOKS_VENV", ROOT / ".venv"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log):
    port = free_port()
    env = dict(os.environ, MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR="false")
    process = subprocess.Popen(
        [VENV / "bin/moto_server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=log,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")




class RuntimeApi:
    """Hands out one event per `invocation/next`, in order, and collects the answers."""

    def __init__(self):
        self.events = queue.Queue()
        self.responses = queue.Queue()
        self.waiting = threading.Event()
        self.first_next = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b"{}")
                if api.first_next is None:
                    api.first_next = time.monotonic()
                api.waiting.set()
                request_id, body = api.events.get()
                api.waiting.clear()
                deadline = int(time.time() * 1000) + 30_000
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:receiver",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else self._chunked()
                self._reply(202, b'{"status":"OK"}')
                if "/invocation/" in self.path:
                    api.responses.put((self.path.rsplit("/", 1)[1], body, time.monotonic()))
                else:
                    api.responses.put(("init/error", body, time.monotonic()))

            def _chunked(self):
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    chunk = self.rfile.read(size + 2)
                    body += chunk[:-2]
                    if size == 0:
                        return body

            def _reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a function killed mid-poll resets its connection

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def wait_idle(self, timeout=30):
        """Until the function waits in `invocation/next` (its Init, or its last invoke, done)."""
        if not self.waiting.wait(timeout):
            raise RuntimeError("the function never asked for its next invocation")

    def invoke(self, event, timeout=30):
        """One invocation; returns (kind, body, seconds from hand-out to answer)."""
        self.wait_idle(timeout)
        started = time.monotonic()
        self.events.put((str(uuid.uuid4()), json.dumps(event).encode()))
        kind, body, at = self.responses.get(timeout=timeout)
        return kind, body, at - started

    def close(self):
        self.server.shutdown()


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread, live or exited), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ns(pid):
    """Nanoseconds on CPU of the process's live threads (/proc/<pid>/task/*/schedstat):
    precise enough for one invocation."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sign(body):
    return "sha256=" + hmac.new(TEST_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()


_SAMPLE = json.loads((ROOT / "events/receiver/call_ended.json").read_text())


def webhook_event(call_id):
    """The sample accepted demo `call.ended` (routed to all four queues) as call `call_id`."""
    payload = json.loads(_SAMPLE["body"])
    payload["data"]["call_id"] = call_id
    body = json.dumps(payload)
    event = json.loads(json.dumps(_SAMPLE))
    event["body"] = body
    event["headers"]["content-length"] = str(len(body))
    event["headers"]["x-nextphone-signature"] = sign(body)
    event["headers"]["authorization"] = f"Bearer {TEST_API_KEY}"
    return event


def answer_status(body):
    """The `status` (or `error`) field of the receiver's JSON answer."""
    answer = json.loads(body)
    inner = json.loads(answer.get("body") or "{}")
    return inner.get("status") or inner.get("error") or f"http {answer.get('statusCode')}"


def init_local(nphooks, endpoint):
    """Creates the table, queues and DLQs as `nphooks init-local` does; returns the queue
    URL variables the receiver reads."""
    env = aws_env(endpoint)
    subprocess.run([nphooks, "init-local"], env=env, check=True, stdout=subprocess.DEVNULL)
    urls = {}
    for name, var in QUEUES.items():
        urls[f"{var}_QUEUE_URL"] = f"{endpoint}/123456789012/nphooks-{name}"
    return urls


def create_secret(python, endpoint, name):
    """A receiver secret (webhook secret, API key) in moto's Secrets Manager; its ARN."""
    code = (
        "import boto3,json,sys;"
        "c=boto3.client('secretsmanager',endpoint_url=sys.argv[1]);"
        "s=json.dumps({'NEXTPHONE_WEBHOOK_SECRETS':sys.argv[3],'NEXTPHONE_API_KEY':sys.argv[4]});"
        "print(c.create_secret(Name=sys.argv[2],SecretString=s)['ARN'])"
    )
    out = subprocess.run(
        [python, "-c", code, endpoint, name, TEST_SECRET, TEST_API_KEY],
        env=aws_env(endpoint), check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def aws_env(endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def function_env(runtime_api, extra):
    """The environment Lambda gives a 128 MB function, plus `extra`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "receiver",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/receiver",
        # What Lambda sets for template.yaml's `LoggingConfig: LogFormat: JSON`.
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "IDEMPOTENCY_TABLE": TABLE,
    }
    env.update(extra)
    return env


class Function:
    """The receiver binary started as Lambda starts it, against `runtime`."""

    def __init__(self, binary, env, log):
        self.runtime = RuntimeApi()
        env = dict(env, AWS_LAMBDA_RUNTIME_API=self.runtime.address)
        self.started = time.monotonic()
        self.process = subprocess.Popen([binary], env=env, stdout=log, stderr=log)
        self.pid = self.process.pid

    def wait_init(self, timeout=30):
        """Seconds from exec to the first `invocation/next`."""
        deadline = time.monotonic() + timeout
        while not self.runtime.waiting.wait(0.05):
            if self.process.poll() is not None:
                raise RuntimeError(f"the function exited during Init ({self.process.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError("Init did not finish")
        return self.runtime.first_next - self.started

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.runtime.close()
