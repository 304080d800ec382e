from rest_framework.routers import SimpleRouter

from .views import ExceptionGroupViewSet, TransactionViewSet

router = SimpleRouter(trailing_slash=True)
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("exception-groups", ExceptionGroupViewSet, basename="exception-group")

urlpatterns = router.urls
