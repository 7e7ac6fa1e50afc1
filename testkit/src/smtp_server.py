"""An aiosmtpd server for tend's tests, with what the CLI cannot do: STARTTLS or implicit TLS
with a given certificate, and AUTH with one user. Messages go to a Maildir, as with the CLI's
Mailbox handler. Usage: smtp_server.py '<json settings>'."""

import asyncio
import json
import ssl
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

settings = json.loads(sys.argv[1])
tls = settings["tls"]  # "none" | "starttls" | "implicit"
user = settings.get("user")
password = settings.get("password")

context = None
if tls != "none":
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings["cert"], settings["key"])


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # handled=False: aiosmtpd answers 535 itself (with the default, handled=True, it stays silent).
    return AuthResult(success=ok, handled=False)


def factory():
    kwargs = {"hostname": "localhost"}
    if tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if user is not None:
        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            # Over implicit TLS aiosmtpd cannot tell the session is encrypted; plain text
            # sessions are the test's choice.
            auth_require_tls=(tls == "starttls"),
        )
    return SMTP(Mailbox(settings["maildir"]), **kwargs)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host="127.0.0.1", port=settings["port"], ssl=context if tls == "implicit" else None
    )
    async with server:
        await server.serve_forever()


asyncio.run(main())
