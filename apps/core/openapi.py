"""The OpenAPI document's conventions, applied to every operation in one place.

`DeclaredAutoSchema` is drf-spectacular's AutoSchema plus what each view already declares
elsewhere: the roles from `allowed_roles` (in the description and as `x-roles`), and every error
status the edges and the declared roles can produce, each with the one error shape
(`apps.core.errors`). What the document publishes and why is written down in `docs/api.md`.

- 400 for every operation: a NUL byte or a malformed value anywhere in the request.
- 401 and 403 for every operation that is not public.
- 404 for every operation with a path parameter, and every authenticated one (an object the
  query or body names, a team, a project, an environment, may not exist).
- 409 for every write: services refuse a conflicting state (a finished task, a taken name).
- 413 for every operation with a request body (`apps.core.parsers`).
An operation's own `responses` (a documented 429, a 410) are kept and win over these.
"""

from drf_spectacular.openapi import AutoSchema

from apps.core.permissions import PUBLIC, declared_roles

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error body of the API (the shape NestJS answers with).",
    "properties": {
        "statusCode": {"type": "integer", "example": 404},
        "message": {"type": "string", "example": "Task not found"},
        "error": {"type": "string", "example": "Not Found"},
        "details": {
            "description": "Validation problems by field, when the request was invalid.",
        },
    },
    "required": ["statusCode", "message", "error"],
}
ERROR_DESCRIPTIONS = {
    400: "Invalid request (a field, a parameter, malformed JSON or a NUL byte)",
    401: "Authentication required (no, an expired or a revoked bearer token)",
    403: "Forbidden - the caller lacks one of the operation's roles",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class DeclaredAutoSchema(AutoSchema):
    def _get_request_body(self, direction="request"):
        # drf-spectacular documents bodies of POST, PUT and PATCH only; a view whose DELETE takes
        # a body (`DELETE /users`: the email) says so with `delete_takes_body = True`.
        if self.method != "DELETE" or not getattr(self.view, "delete_takes_body", False):
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        roles = declared_roles(self.view, method)
        if roles == PUBLIC:
            operation["x-roles"] = []
            note = "Public: no authentication."
        else:
            operation["x-roles"] = [str(role) for role in roles]
            note = "Roles: " + ", ".join(operation["x-roles"]) + "."
        described = operation.get("description", "").strip()
        operation["description"] = f"{described}\n\n{note}" if described else note

        statuses = [400, 413] if "requestBody" in operation else [400]
        if roles != PUBLIC:
            statuses += [401, 403]
        if "{" in path or roles != PUBLIC:
            statuses.append(404)
        if method.upper() in WRITE_METHODS:
            statuses.append(409)
        responses = operation.setdefault("responses", {})
        reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
        for status in sorted(statuses):
            documented = responses.get(str(status))
            if documented is None or "content" not in documented:
                responses[str(status)] = {
                    "description": (documented or {}).get("description")
                    or ERROR_DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": reference}},
                }
        for status, response in responses.items():
            if status[0] in "45" and "content" not in response:
                response["content"] = {"application/json": {"schema": reference}}
        return operation


def add_error_component(result, generator, request, public):
    """Postprocessing hook: the error schema every 4xx response refers to."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    return result


INTERNAL_PATH_MARKER = "/internal/"


def exclude_internal_routes(endpoints):
    """Preprocessing hook: routes under an `/internal/` segment stay out of the public document."""
    return [endpoint for endpoint in endpoints if INTERNAL_PATH_MARKER not in endpoint[0]]


_EXAMPLE_BY_FORMAT = {
    "email": "owner@example.com",
    "uuid": "3f2b1c9e-8d4a-4e6b-9f1a-2c3d4e5f6a7b",
    "date-time": "2026-01-01T09:00:00Z",
    "date": "2026-01-01",
    "uri": "https://github.com/acme/app",
}
_EXAMPLE_BY_TYPE = {"integer": 1, "number": 1, "boolean": True, "string": "example"}


def example_for(schema: dict, components: dict, depth: int = 0):
    """A value `schema` accepts, built from its enums, defaults, formats and limits."""
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return next((value for value in schema["enum"] if value is not None), None)
    for key in ("oneOf", "anyOf", "allOf"):
        if schema.get(key):
            return example_for(schema[key][0], components, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {
            name: example_for(field, components, depth + 1)
            for name, field in schema.get("properties", {}).items()
            if not field.get("readOnly")
        }
    if kind == "array":
        item = example_for(schema.get("items", {}), components, depth + 1)
        return [item] * max(1, schema.get("minItems", 1))
    if kind == "string" and "format" not in schema:
        length = schema.get("minLength", 0)
        return "example".ljust(length, "x")[: schema.get("maxLength", 64)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    return _EXAMPLE_BY_FORMAT.get(schema.get("format"), _EXAMPLE_BY_TYPE.get(kind))


def add_request_examples(result, generator, request, public):
    """Postprocessing hook: every JSON request body without an example gets one, built from its
    schema (a hand-written example in the view wins)."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            media = content.get("application/json")
            if media and "example" not in media and "examples" not in media:
                media["example"] = example_for(media.get("schema", {}), components)
    return result
