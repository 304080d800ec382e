from django.urls import path

from . import views

urlpatterns = [
    path("inbound/<slug:system>/", views.WebhookView.as_view(), name="inbound-webhook"),
    path("inbound/<slug:system>/bulk", views.BulkView.as_view(), name="inbound-bulk"),
]
