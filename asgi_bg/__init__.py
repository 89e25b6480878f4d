"""asgi_bg: a small, fast pure-ASGI framework whose centre is background tasks done right."""
