"""Root URLs: the admin console, the REST API under /api/v1/ and the OpenAPI schema."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from apps.core.throttles import login_throttled

admin.site.site_header = "Integration Console"
admin.site.site_title = "Integration Console"
admin.site.index_title = "Systems, canonical records, mappings and history"
admin.site.login = login_throttled(admin.site.login)

api_v1 = [
    # First: the signed webhook endpoint is the busiest URL, and Django tries the patterns in order.
    path("", include("apps.inbound.api.urls")),
    path("", include("apps.systems.api.urls")),
    path("", include("apps.canonical.api.urls")),
    path("", include("apps.mapping.api.urls")),
    path("", include("apps.sync.api.urls")),
    path("", include("apps.reconciliation.api.urls")),
    path("", include("apps.metrics.api.urls")),
    path("", include("apps.core.api.approvals")),
    # The schema maps every endpoint and field: for signed-in people only.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]),
        name="api-docs",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("apps.core.urls")),
    path("", include("apps.console.urls")),
]
if settings.SANDBOX_ENABLED:
    urlpatterns.insert(0, path("sandbox/", include("apps.sandbox.urls")))
