from rest_framework.routers import SimpleRouter

from .views import CrossReferenceViewSet, ReferenceValueViewSet, ValueMapEntryViewSet, ValueMapViewSet

router = SimpleRouter(trailing_slash=True)
router.register("cross-references", CrossReferenceViewSet)
router.register("value-maps", ValueMapViewSet)
router.register("value-map-entries", ValueMapEntryViewSet)
router.register("reference-values", ReferenceValueViewSet)

urlpatterns = router.urls
