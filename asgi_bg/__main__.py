"""`python -m asgi_bg module:app`: serve an ASGI app with the embedded server."""

from asgi_bg.server.cli import main

raise SystemExit(main())
