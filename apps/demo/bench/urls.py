"""The site's own URLs plus the W1 floor, so both are served by the same gunicorn."""

from django.urls import path

from integration_console.urls import urlpatterns as site

from .floor import FloorWebhookView

urlpatterns = [path("bench/floor/webhook/", FloorWebhookView.as_view()), *site]
