"""SMTP sink for tests: aiosmtpd with optional STARTTLS and AUTH; stores mail in a Maildir."""
import argparse, signal, ssl
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
ap = argparse.ArgumentParser()
ap.add_argument("host"); ap.add_argument("port", type=int); ap.add_argument("maildir")
ap.add_argument("--cert"); ap.add_argument("--key"); ap.add_argument("--user"); ap.add_argument("--password")
ap.add_argument("--require-auth", action="store_true")
a = ap.parse_args()
tls = None
if a.cert:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH); tls.load_cert_chain(a.cert, a.key)
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user and auth_data.password.decode() == a.password
    return AuthResult(success=ok, handled=False)   # handled=False => 535 on failure
kw = dict(hostname=a.host, port=a.port, tls_context=tls, require_starttls=bool(tls))
if a.user:
    kw.update(authenticator=authenticator, auth_required=a.require_auth, auth_require_tls=bool(tls))
c = Controller(Mailbox(a.maildir), **kw); c.start()
print(f"smtp sink listening on {a.host}:{a.port}", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT}); c.stop()
