"""Request-wide correlation IDs, and problem+json for every API error, including unexpected ones."""

import json
import logging

from django.http import HttpResponse

from .context import _correlation_id, clean_correlation_id

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(status: int, title: str, detail: str, **extra) -> HttpResponse:
    """An RFC 9457 problem+json response."""
    body = {"type": extra.pop("type", "about:blank"), "title": title, "status": status, "detail": detail}
    body.update({key: value for key, value in extra.items() if value is not None})
    return HttpResponse(json.dumps(body, default=str), status=status, content_type=PROBLEM_CONTENT_TYPE)


class CorrelationIdMiddleware:
    """Give every request a correlation ID (the caller's, if it sent a usable one) and echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(CORRELATION_HEADER) or request.headers.get("X-Request-ID")
        correlation_id = clean_correlation_id(incoming)
        request.correlation_id = correlation_id
        token = _correlation_id.set(correlation_id)
        try:
            response = self.get_response(request)
        finally:
            _correlation_id.reset(token)
        response[CORRELATION_HEADER] = correlation_id
        return response


class ApiProblemMiddleware:
    """Under /api/, answer errors Django itself produces (404, 500, ...) as problem+json, never HTML."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith(("application/json", PROBLEM_CONTENT_TYPE)):
            return response
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large", 400: "Bad request"}
        detail = {
            404: f"There is no API resource at {request.path}. See /api/v1/schema/ for what exists.",
            413: "The request body is larger than this endpoint accepts.",
        }.get(response.status_code, "The request could not be handled.")
        return problem_response(
            response.status_code,
            titles.get(response.status_code, "Error"),
            detail,
            correlation_id=getattr(request, "correlation_id", None),
        )

    def process_exception(self, request, exception):
        if not request.path.startswith("/api/"):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return problem_response(
            500,
            "Internal error",
            "Something went wrong on our side. Nothing you sent was lost if you received an event id; "
            "quote the correlation id to support.",
            correlation_id=getattr(request, "correlation_id", None),
        )
