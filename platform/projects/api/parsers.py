"""Request parsers that refuse text no database column can store.

PostgreSQL cannot store a NUL character in text or jsonb; without these checks a value
carrying one (dataset ``metadata``, job ``parameters``, a name sent as a form field) fails at
the database with a 500. Every parser the API uses answers 400 instead.
"""

from django.http import QueryDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

MESSAGE = "Text may not contain NUL characters (\\u0000)."


def contains_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, QueryDict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.lists())
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


class NulRefusingJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError(MESSAGE)
        return data


class NulRefusingFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError(MESSAGE)
        return data


class NulRefusingMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        names = [f.name for files in result.files.lists() for f in files[1]]
        if contains_nul(result.data) or contains_nul(names):
            raise ParseError(MESSAGE)
        return result
