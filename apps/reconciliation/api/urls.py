from rest_framework.routers import SimpleRouter

from .views import DiscrepancyViewSet, PeriodSignOffViewSet, ReconciliationRunViewSet

router = SimpleRouter(trailing_slash=True)
router.register("reconciliation/runs", ReconciliationRunViewSet, basename="reconciliation-run")
router.register("reconciliation/discrepancies", DiscrepancyViewSet, basename="discrepancy")
router.register("reconciliation/sign-offs", PeriodSignOffViewSet, basename="sign-off")

urlpatterns = router.urls
