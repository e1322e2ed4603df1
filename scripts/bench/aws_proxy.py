"""A keep-alive (and, with a certificate, TLS) terminator in front of moto that counts what
goes through it: connections accepted, and requests per AWS operation (`X-Amz-Target`).

Each client connection gets its own upstream connection, reopened whenever moto closes it,
so the client's pool sees a server that keeps connections as AWS does. Loopback only.
"""

import asyncio
import ssl
import threading
from collections import Counter

MAX_HEAD = 64 * 1024


class Counts:
    """What the proxy saw; read from the harness thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.upstream_connections = 0
        self.operations = Counter()

    def snapshot(self):
        with self.lock:
            return self.connections, self.upstream_connections, Counter(self.operations)


async def _read_message(reader):
    """One HTTP/1.1 message: (head bytes, body bytes, header dict) or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    if len(head) > MAX_HEAD:
        raise ValueError("header too long")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += chunk[:-2]
            if size == 0:
                break
        # Re-framed with a length: drop the chunked header.
        kept = [l for l in lines[1:] if l and not l.lower().startswith("transfer-encoding")]
        kept.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join([lines[0], *kept]) + "\r\n\r\n").encode("latin-1")
        headers["content-length"] = str(len(body))
        return head, bytes(body), headers
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return head, body, headers


def _keep_alive(head):
    """The response head with any `Connection: close` removed."""
    lines = head.decode("latin-1").split("\r\n")
    kept = [l for l in lines if not l.lower().startswith("connection:")]
    return "\r\n".join(kept).encode("latin-1")


class Proxy:
    def __init__(self, upstream_host, upstream_port, counts, keep_alive):
        self.upstream = (upstream_host, upstream_port)
        self.keep_alive = keep_alive
        self.counts = counts

    async def _open_upstream(self):
        with self.counts.lock:
            self.counts.upstream_connections += 1
        return await asyncio.open_connection(*self.upstream)

    async def handle(self, reader, writer):
        with self.counts.lock:
            self.counts.connections += 1
        up = None
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                head, body, headers = request
                target = headers.get("x-amz-target") or head.split(b" ", 2)[1].decode()
                with self.counts.lock:
                    self.counts.operations[target] += 1
                for attempt in range(2):
                    if up is None:
                        up = await self._open_upstream()
                    up[1].write(head + body)
                    await up[1].drain()
                    response = await _read_message(up[0])
                    if response is not None:
                        break
                    up[1].close()
                    up = None
                if response is None:
                    return
                rhead, rbody, rheaders = response
                closes = rheaders.get("connection", "").lower() == "close"
                if closes:
                    up[1].close()
                    up = None
                if not self.keep_alive:
                    # As moto itself: the connection ends with its answer.
                    writer.write(rhead + rbody)
                    await writer.drain()
                    return
                writer.write(_keep_alive(rhead) + rbody)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            if up is not None:
                up[1].close()
            writer.close()


def start(upstream_port, listen, counts, certfile=None, keyfile=None, keep_alive=True):
    """Runs the proxy in a daemon thread; `listen` is a list of loopback hosts. Returns
    the port they all listen on. `keep_alive=False` passes moto's `Connection: close` on."""
    context = None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
    proxy = Proxy("127.0.0.1", upstream_port, counts, keep_alive)
    ready = threading.Event()
    port = []

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # Connections of a killed function end mid-read: nothing to report.
        loop.set_exception_handler(lambda loop, context: None)

        async def serve():
            first = await asyncio.start_server(proxy.handle, listen[0], 0, ssl=context)
            chosen = first.sockets[0].getsockname()[1]
            for host in listen[1:]:
                await asyncio.start_server(proxy.handle, host, chosen, ssl=context)
            port.append(chosen)
            ready.set()
            await asyncio.Event().wait()

        loop.run_until_complete(serve())

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return port[0]
