from rest_framework.routers import SimpleRouter

from .views import (
    CrossReferenceViewSet,
    ReferenceValueViewSet,
    SourceProfileViewSet,
    ValueMapEntryViewSet,
    ValueMapViewSet,
)

router = SimpleRouter(trailing_slash=True)
router.register("cross-references", CrossReferenceViewSet)
router.register("value-maps", ValueMapViewSet)
router.register("value-map-entries", ValueMapEntryViewSet)
router.register("reference-values", ReferenceValueViewSet)
router.register("source-profiles", SourceProfileViewSet)

urlpatterns = router.urls
