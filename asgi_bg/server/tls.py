"""`--ssl-*`: the server side TLS context."""

from __future__ import annotations

import ssl

from .config import ServerConfig


def make_ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The context for the options, or None when TLS is off; ValueError naming the files
    when they cannot be loaded."""
    if config.ssl_certfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, password=config.ssl_keyfile_password
        )
        if config.ssl_ca_certs is not None:
            context.load_verify_locations(config.ssl_ca_certs)
    except OSError as exc:  # ssl.SSLError included: a wrong password, a non-PEM file
        files = ", ".join(f for f in (config.ssl_certfile, config.ssl_keyfile) if f)
        raise ValueError(f"cannot load the TLS files {files}: {exc}") from exc
    context.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
    context.set_alpn_protocols(["http/1.1"])
    return context
