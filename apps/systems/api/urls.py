from rest_framework.routers import SimpleRouter

from .views import ConnectedSystemViewSet, OwnershipRuleViewSet, RouteViewSet, SigningSecretViewSet

router = SimpleRouter(trailing_slash=True)
router.register("connected-systems", ConnectedSystemViewSet)
router.register("signing-secrets", SigningSecretViewSet)
router.register("ownership-rules", OwnershipRuleViewSet)
router.register("routes", RouteViewSet)

urlpatterns = router.urls
