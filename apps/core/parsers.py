"""The API's JSON parser: DRF's, with limits, so no request body can turn into a 500.

A body larger than `SFP_API_MAX_JSON_BYTES` answers 413 (refused from `Content-Length` before
anything is read, or after reading one byte past the limit when the length is not declared);
JSON nested deeper than `SFP_API_MAX_JSON_DEPTH` answers 400 before it is parsed (a bounded scan:
it stops at the first level too deep), so the parser never recurses far; a string holding a NUL
character (`\\u0000`) answers 400, because PostgreSQL can store it in neither text nor jsonb.
All of them in the error shape, through `apps.core.errors.api_exception_handler`.
"""

import codecs
import json
import re

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings

# A JSON string (skipped whole, so brackets inside it do not count) or a bracket.
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
# `\u0000` preceded by an even number of backslashes (an odd count escapes the `\u` itself).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large"
    default_code = "request_too_large"


def _too_deep(raw: bytes, max_depth: int) -> bool:
    # Depth can never exceed the number of opening brackets: most bodies skip the scan.
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _strict_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        max_bytes = settings.SFP_API_MAX_JSON_BYTES
        max_depth = settings.SFP_API_MAX_JSON_DEPTH
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH", "") if request is not None else ""
        if declared.isdigit() and int(declared) > max_bytes:
            raise RequestTooLarge(f"Request body larger than {max_bytes} bytes")
        raw = stream.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise RequestTooLarge(f"Request body larger than {max_bytes} bytes")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = codecs.decode(raw, encoding).encode("utf-8") if encoding != "utf-8" else raw
        except (LookupError, ValueError) as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        if _too_deep(raw, max_depth):
            raise exceptions.ParseError(f"JSON nested deeper than {max_depth} levels")
        if _NUL_ESCAPE.search(raw):
            raise exceptions.ParseError("JSON strings must not contain NUL (\\u0000)")
        try:
            return json.loads(
                raw, parse_constant=_strict_constant if api_settings.STRICT_JSON else None
            )
        except RecursionError:  # the scan above makes this unreachable; kept as a fence
            raise exceptions.ParseError(f"JSON nested deeper than {max_depth} levels") from None
        except ValueError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
