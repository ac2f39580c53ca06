"""Errors services raise, independent of HTTP; the API's exception handler maps them to 4xx.

Services validate and refuse with these; views stay thin. Each carries the status it maps to.
"""


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ServiceError):
    status_code = 400


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Gone(ServiceError):
    status_code = 410
