"""Request throttles on the doors anyone can knock on: the login page and the signed inbound endpoints.

DRF's cache-backed throttles (the cache is shared by every web process). Rates are in
`REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]` and are read when a throttle is made, so a settings
override applies at once.
"""

import functools

from django.conf import settings
from django.http import HttpResponse
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)


class LoginThrottle(_SettingsRateThrottle):
    """Sign-in attempts per client address."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class InboundThrottle(_SettingsRateThrottle):
    """Deliveries per connected system and client address."""

    scope = "inbound"

    def get_cache_key(self, request, view):
        system = (getattr(view, "kwargs", None) or {}).get("system", "")
        return self.cache_format % {"scope": self.scope, "ident": f"{system}:{self.get_ident(request)}"}


class RejectedDeliveryThrottle(_SettingsRateThrottle):
    """Refused deliveries (bad signature, unreadable body) per system and client address.

    Unlike the other throttles it counts only failures: `allow_request` checks without counting and the
    endpoint calls `record_rejection` when it refuses a delivery. Once a sender is over the rate, its
    requests are answered 429 before anything is verified or stored.
    """

    scope = "inbound_rejected"

    def get_cache_key(self, request, view):
        system = (getattr(view, "kwargs", None) or {}).get("system", "")
        return self.cache_format % {"scope": self.scope, "ident": f"{system}:{self.get_ident(request)}"}

    def throttle_success(self):
        return True

    def record_rejection(self, request, view) -> None:
        if self.rate is None:
            return
        key = self.get_cache_key(request, view)
        now = self.timer()
        history = [stamp for stamp in self.cache.get(key, []) if stamp > now - self.duration]
        self.cache.set(key, [now, *history][: self.num_requests], self.duration)


def login_throttled(login_view):
    """Wrap a login view: more sign-in attempts than the `login` rate from one address are answered 429."""

    @functools.wraps(login_view)
    def view(request, *args, **kwargs):
        if request.method == "POST":
            throttle = LoginThrottle()
            if not throttle.allow_request(request, None):
                wait = int(throttle.wait() or 60) + 1
                response = HttpResponse(
                    f"Too many sign-in attempts from your address. Wait {wait} seconds, then try again.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(wait)
                return response
        return login_view(request, *args, **kwargs)

    return view
