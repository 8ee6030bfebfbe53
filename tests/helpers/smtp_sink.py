#!/usr/bin/env python3
"""A local SMTP server for tests: accepts every message and writes it down.

    python3 tests/helpers/smtp_sink.py PORT OUTFILE [--exit-on-stdin-eof]

Listens on 127.0.0.1:PORT (0 = pick a free port), prints "LISTENING <port>" once it accepts
connections, and appends each message received to OUTFILE as one JSON line:
{"mail_from": ..., "rcpt_tos": [...], "data": "<the message as received>", "peer": "ip:port"}
(the sender's end of the connection, so a test can tell reused connections from new ones).
The line is written before the server answers 250, so a sender that saw success finds it there.

Recipients whose local part starts with "reject" are refused with 550 (permanent) and those
starting with "defer" with 451 (temporary), so tests can see both kinds of refusal. A message to
a recipient starting with "flaky" is written down and then answered 451 the first time that
recipient is seen, and accepted after that: the server took the message but the sender never
heard so, as when a connection dies during DATA, so the sender's retry is a second copy.

With --exit-on-stdin-eof the server stops when its standard input closes, so it never outlives
a test process that started it with a pipe, whatever happened to that process.

Needs aiosmtpd: pip install -r tests/helpers/requirements.txt
"""

import argparse
import json
import signal
import sys
import threading

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.stderr.write(
        "smtp_sink.py needs aiosmtpd: run `pip install -r tests/helpers/requirements.txt`\n"
    )
    sys.exit(3)


class Sink:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.flaky_seen = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        if local.startswith("defer"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        line = json.dumps(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": content,
                "peer": "%s:%s" % tuple(session.peer[:2]),
            }
        )
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            flaky = [a for a in envelope.rcpt_tos if a.lower().startswith("flaky")]
            first_time = [a for a in flaky if a.lower() not in self.flaky_seen]
            self.flaky_seen.update(a.lower() for a in flaky)
        if first_time:
            return "451 4.4.2 Connection lost during the transfer"
        return "250 Message accepted"


class SinkController(Controller):
    def _trigger_server(self):
        # With port 0 the OS picks the port: learn it before the controller connects to check
        # that the server is up.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="port on 127.0.0.1, or 0 to pick a free one")
    parser.add_argument("outfile", help="file to append one JSON line per message to")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()

    controller = SinkController(Sink(args.outfile), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"LISTENING {controller.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.exit_on_stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(0.5):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
