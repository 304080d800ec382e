from rest_framework.routers import SimpleRouter

from .views import AlertNotificationViewSet, AlertRuleViewSet, AlertViewSet, MetricValueViewSet

router = SimpleRouter(trailing_slash=True)
router.register("metrics", MetricValueViewSet, basename="metric")
router.register("alert-rules", AlertRuleViewSet)
router.register("alerts", AlertViewSet)
router.register("alert-notifications", AlertNotificationViewSet)

urlpatterns = router.urls
