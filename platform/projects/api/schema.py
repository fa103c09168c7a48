"""OpenAPI schema postprocessing: the error responses every operation may give.

drf-spectacular documents the success responses a view declares; the errors come from shared
machinery (authentication, scoping, validation, throttling, the tus checks) and are added here
once, for every operation, so that a response a client sees is always one the schema lists.
"""

from __future__ import annotations

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "An error. ``detail`` says what is wrong; a validation error (400) names each field "
        "with a list of messages instead."
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}

# status -> description, for every operation
COMMON_ERRORS = {
    "400": "Bad input: a field, header or query parameter is invalid.",
    "401": "Not authenticated: send ``Authorization: Token KEY`` or log in.",
    "403": "Your role in this project does not allow this (viewers are read-only).",
    "404": "No such object in your projects (objects of other projects answer 404 too).",
    "405": "Method not allowed here.",
    "409": "Conflicts with the current state (still referenced, already complete, ...).",
    "413": "Too large for this server or project.",
    "429": "Too many requests; retry after ``Retry-After`` seconds.",
    "507": "Not enough storage: free disk space or the project's quota.",
}
# The tus endpoint's own protocol answers.
TUS_ERRORS = {
    "410": "The received part of the upload is gone; start a new upload.",
    "411": "PATCH needs Content-Length.",
    "412": "Tus-Resumable version not supported.",
    "415": "PATCH bodies must be application/offset+octet-stream.",
    "423": "Another request is writing to this upload.",
}
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


def _error_response(description: str, status: str) -> dict:
    response = {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}
        }
    if status == "401":
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Token"}
        }
    return response


def add_error_responses(result, generator, request, public):
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry: document the shared error answers."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        errors = dict(COMMON_ERRORS)
        if path.startswith("/api/v1/uploads/"):
            errors.update(TUS_ERRORS)
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                responses.setdefault(status, _error_response(description, status))
    return result
