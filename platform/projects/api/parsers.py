"""JSON parsing that refuses text no database column can store."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _contains_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


class NulRefusingJSONParser(JSONParser):
    """``JSONParser`` that answers 400 for a NUL character (``\\u0000``) anywhere in the body.

    PostgreSQL cannot store NUL in text or jsonb; without this check a JSON field (dataset
    ``metadata``, job ``parameters``) carrying one fails at the database with a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _contains_nul(data):
            raise ParseError("JSON text may not contain NUL characters (\\u0000).")
        return data
