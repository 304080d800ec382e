from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("legal-entities", views.LegalEntityViewSet)
router.register("customers", views.CustomerViewSet)
router.register("resources", views.ResourceViewSet)
router.register("rate-cards", views.RateCardViewSet)
router.register("rate-card-versions", views.RateCardVersionViewSet)
router.register("rate-card-lines", views.RateCardLineViewSet)
router.register("opportunities", views.OpportunityViewSet)
router.register("contracts", views.ContractViewSet)
router.register("contract-lines", views.ContractLineViewSet)
router.register("contract-amendments", views.ContractAmendmentViewSet)
router.register("projects", views.ProjectViewSet)
router.register("tasks", views.TaskViewSet)
router.register("milestones", views.MilestoneViewSet)
router.register("time-entries", views.TimeEntryViewSet)
router.register("expenses", views.ExpenseViewSet)
router.register("billing-schedules", views.BillingScheduleViewSet)
router.register("billing-events", views.BillingEventViewSet)
router.register("invoices", views.InvoiceViewSet)
router.register("invoice-lines", views.InvoiceLineViewSet)
router.register("payments", views.PaymentViewSet)
router.register("exchange-rates", views.ExchangeRateViewSet)
router.register("revenue-schedules", views.RevenueScheduleViewSet)
router.register("revenue-schedule-lines", views.RevenueScheduleLineViewSet)

urlpatterns = router.urls
