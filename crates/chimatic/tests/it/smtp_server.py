"""A real SMTP server for the tests (aiosmtpd): STARTTLS or implicit TLS, AUTH with one user.

Usage: smtp_server.py PORT MODE CERT KEY USER PASSWORD OUT [tls12]
MODE is `starttls` or `implicit`; with `tls12` the server offers only TLS 1.2.
Each AUTH attempt and each accepted message is appended to OUT as a JSON line. Prints `ready`
once listening, then serves until killed.
"""
import json
import logging
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, mode, cert, key, user, password, out = sys.argv[1:8]
tls12_only = len(sys.argv) > 8 and sys.argv[8] == "tls12"

# aiosmtpd 1.4 warns on every AUTH that its own Session.login_data is deprecated; those lines
# buried the test output (and a failing test's report with it).
logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())


def record(entry):
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def over_tls(server, session):
    # After STARTTLS aiosmtpd sets session.ssl; with implicit TLS the transport itself is TLS.
    return session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
    record({"event": "auth", "mechanism": mechanism, "ok": ok, "tls": over_tls(server, session)})
    return AuthResult(success=ok, handled=False)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        record({
            "event": "message",
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": over_tls(server, session),
        })
        return "250 OK"


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
if tls12_only:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2

if mode == "starttls":
    controller = Controller(Handler(), hostname="127.0.0.1", port=int(port), tls_context=context,
                            require_starttls=True, authenticator=authenticator, auth_require_tls=True,
                            ready_timeout=10)
else:
    controller = Controller(Handler(), hostname="127.0.0.1", port=int(port), ssl_context=context,
                            authenticator=authenticator, auth_require_tls=False, ready_timeout=10)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
