"""An app module whose import fails: the server must show this file and line."""

settings: dict[str, str] = {}
DATABASE_URL = settings["DATABASE_URL"]  # KeyError while importing
