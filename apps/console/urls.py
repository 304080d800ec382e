"""The operations console: home, exception groups, and (console B) timeline, audit and steward pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from apps.core.throttles import login_throttled

from .views import approvals, audit, exceptions, home, reconciliation, steward, timeline

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", login_throttled(auth_views.LoginView.as_view(template_name="console/login.html")), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("exceptions/", exceptions.group_list, name="exceptions"),
    path("exceptions/<int:pk>/", exceptions.group_detail, name="exception-group"),
    path("exceptions/<int:pk>/rerun/", exceptions.group_rerun, name="exception-group-rerun"),
    path("exceptions/<int:pk>/update/", exceptions.group_update, name="exception-group-update"),
    path("exceptions/rerun/", exceptions.bulk_rerun, name="bulk-rerun"),
    path("transactions/", exceptions.bulk_rerun, name="transactions"),
    path("exceptions/reruns/<int:pk>/", exceptions.rerun_batch, name="rerun-batch"),
    path("exceptions/reruns/<int:pk>/progress/", exceptions.rerun_batch_progress_json, name="rerun-batch-progress"),
    path("exceptions/reruns/<int:pk>/control/", exceptions.rerun_batch_control, name="rerun-batch-control"),
]

# Timeline, audit and steward pages.

urlpatterns += [
    path("timeline/", timeline.timeline, name="timeline"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/<str:label>/<int:history_id>/", audit.audit_detail, name="audit-detail"),
    path("stewarding/", steward.steward_home, name="steward"),
    path("stewarding/value-maps.csv", steward.value_maps_export, name="value-maps-export"),
    path("stewarding/value-maps/import/", steward.value_maps_upload, name="value-maps-import"),
]

# Reconciliation.

urlpatterns += [
    path("reconciliation/", reconciliation.reconciliation_page, name="reconciliation"),
    path("reconciliation/run/", reconciliation.run_now, name="reconciliation-run"),
    path("reconciliation/runs/<int:pk>/progress/", reconciliation.run_progress, name="reconciliation-run-progress"),
    path(
        "reconciliation/discrepancies/<int:pk>/<str:action>/",
        reconciliation.discrepancy_act,
        name="reconciliation-discrepancy-act",
    ),
    path("reconciliation/sign-off/", reconciliation.sign_off_prepare_view, name="reconciliation-sign-off-prepare"),
    path(
        "reconciliation/sign-off/<int:pk>/approve/",
        reconciliation.sign_off_approve_view,
        name="reconciliation-sign-off-approve",
    ),
]

# Four-eyes approvals.

urlpatterns += [
    path("approvals/", approvals.approval_list, name="approvals"),
    path("approvals/<int:pk>/approve/", approvals.approval_approve, name="approval-approve"),
    path("approvals/<int:pk>/reject/", approvals.approval_reject, name="approval-reject"),
]
