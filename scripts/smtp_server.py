"""A real SMTP server on loopback for nphooks' tests (aiosmtpd).

Stores every accepted message, as received, in MAILDIR/<n>.eml, and fails on cue by
recipient local part:
  reject-550@…  → 550 5.1.1 mailbox unavailable (permanent)
  tempfail@…    → 451 4.3.0 try again later (transient)

usage: python scripts/smtp_server.py --port PORT --maildir DIR
"""

import argparse
import asyncio
import os
import uuid

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, maildir):
        self.maildir = maildir
        os.makedirs(maildir, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "reject-550":
            return "550 5.1.1 mailbox unavailable"
        if local == "tempfail":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(self.maildir, f"{uuid.uuid4().hex}.eml")
        tmp = name + ".tmp"
        with open(tmp, "wb") as f:
            f.write(f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode())
            f.write(envelope.original_content or envelope.content)
        os.replace(tmp, name)
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    controller = Controller(Recorder(args.maildir), hostname="127.0.0.1", port=args.port)
    controller.start()
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
