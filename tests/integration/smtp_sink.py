#!/usr/bin/env python3
"""A local mail server for the integration tests (Debian's python3-aiosmtpd).

    smtp_sink.py PORT DIR

Listens on 127.0.0.1:PORT and writes every message it accepts to DIR as a
JSON file: the envelope, the headers decoded, the MIME parts decoded by
Python's email parser, and the parser's defects, so that a test checks the
message with a parser that is not the sender's. Local parts choose the
answer: refuse* gets 550 at RCPT, busy* 451, slow* waits SINK_SLOW_S
seconds (3) in DATA after touching DIR/slow-started. DIR/ready appears once
it listens; SIGTERM stops it.
"""
import asyncio
import email
import email.policy
import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller

port, outdir = int(sys.argv[1]), sys.argv[2]
os.makedirs(outdir, exist_ok=True)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("refuse"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0]
        if rcpt.split("@")[0].startswith("slow"):
            open(os.path.join(outdir, "slow-started"), "w").close()
            await asyncio.sleep(float(os.environ.get("SINK_SLOW_S", "3")))
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts, defects = [], [type(d).__name__ for d in msg.defects]
        for p in msg.walk():
            defects += [type(d).__name__ for d in p.defects]
            if p.is_multipart():
                continue
            parts.append({
                "type": p.get_content_type(),
                "charset": p.get_content_charset(),
                "cte": p.get("Content-Transfer-Encoding", ""),
                "body": p.get_content(),
            })
        out = {
            "mail_from": envelope.mail_from,
            "rcpt": envelope.rcpt_tos,
            "subject": str(msg["Subject"]),
            "raw_headers": raw.split(b"\r\n\r\n")[0].decode("ascii", "replace"),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "reply_to": str(msg.get("Reply-To", "")),
            "message_id": str(msg.get("Message-ID", "")),
            "date": str(msg.get("Date", "")),
            "mime_version": str(msg.get("MIME-Version", "")),
            "auto_submitted": str(msg.get("Auto-Submitted", "")),
            "content_type": msg.get_content_type(),
            "parts": parts,
            "defects": defects,
            "received_at": time.time(),
        }
        name = os.path.join(outdir, "%d.json" % time.time_ns())
        with open(name + ".tmp", "w") as f:
            json.dump(out, f)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 accepted"


controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
open(os.path.join(outdir, "ready"), "w").close()
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
