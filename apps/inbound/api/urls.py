from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("inbound-deliveries", views.DeliveryViewSet, basename="inbound-delivery")
router.register("inbound-events", views.InboundEventViewSet, basename="inbound-event")

urlpatterns = [
    path("inbound/<slug:system>/", views.WebhookView.as_view(), name="inbound-webhook"),
    path("inbound/<slug:system>/bulk", views.BulkView.as_view(), name="inbound-bulk"),
    *router.urls,
]
