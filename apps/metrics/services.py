"""Every write of the metrics app: computing snapshots, evaluating alert rules, sending notifications and digests."""

import datetime
import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.context import audit_context
from apps.core.history import bulk_create_tracked, save_if_changed
from apps.core.money import quantize
from apps.reconciliation.models import ROLLUP_CHECKS, Discrepancy

from . import selectors
from .calculations import CALCULATIONS
from .definitions import DEFINITIONS, Unit
from .models import Alert, AlertNotification, AlertRule, MetricSnapshot, MetricValue
from .periods import Period, recent_periods

logger = logging.getLogger(__name__)


def metric_values_compute(
    *, periods: list[Period] | None = None, metrics: list[str] | None = None, actor=None, reason: str
) -> list[MetricSnapshot]:
    """Compute every metric (or the ones given) for the periods given (default: the running and last months)."""
    periods = periods or recent_periods(getattr(settings, "METRICS_MONTHS_BACK", 1))
    codes = list(metrics or CALCULATIONS)
    now = timezone.now()
    computed = []
    for period in periods:
        for code in codes:
            computed.append((period, code, CALCULATIONS[code](period)))
    with audit_context(actor=actor, reason=reason), transaction.atomic():
        snapshots = bulk_create_tracked(
            MetricSnapshot,
            [
                MetricSnapshot(
                    metric=code,
                    period=period.start,
                    computed_at=now,
                    as_of=period.as_of(now),
                    figure_count=len(figures),
                )
                for period, code, figures in computed
            ],
        )
        values = []
        for snapshot, (period, code, figures) in zip(snapshots, computed, strict=True):
            values.extend(
                MetricValue(
                    snapshot=snapshot,
                    metric=code,
                    legal_entity_id=figure.legal_entity_id,
                    period=period.start,
                    currency=figure.currency,
                    value=figure.value,
                    sample_size=figure.sample_size,
                    computed_at=now,
                )
                for figure in figures
            )
        bulk_create_tracked(MetricValue, values)
    return snapshots


# --- alerts ----------------------------------------------------------------------------------


def _role_recipients(role: str) -> list[str]:
    """The email addresses of the active members of a role."""
    users = get_user_model().objects.filter(groups__name=role, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _format(value: Decimal, unit: str, currency: str) -> str:
    if unit == Unit.MONEY:
        return f"{quantize(value, currency or 'USD'):,} {currency}".strip()
    if unit == Unit.PERCENT:
        return f"{value:.2f} %"
    return f"{value:.1f} days"


def _notify(*, alert: Alert, kind: str, value: Decimal, unit: str, now) -> AlertNotification:
    """Email the rule's role about this alert and record that it did (in the caller's transaction)."""
    rule = alert.rule
    recipients = _role_recipients(rule.owner_role)
    shown = _format(value, unit, alert.currency)
    threshold = _format(rule.threshold, unit, alert.currency)
    worsened = kind == AlertNotification.Kind.WORSENED
    subject = f"[{rule.name}] {'Worse: ' if worsened else ''}{alert.subject}: {shown}"[:300]
    lines = [
        f"{'Worse since the last notice' if worsened else 'New breach'}: {alert.subject}.",
        f"Now: {shown} (threshold: {rule.get_comparison_display().lower()} {threshold}).",
    ]
    if worsened and alert.notified_value is not None:
        lines.append(
            f"Last notified on {alert.notified_at:%Y-%m-%d}: {_format(alert.notified_value, unit, alert.currency)}."
        )
    if rule.kind == AlertRule.Kind.METRIC:
        lines.append(f"Definition: {DEFINITIONS[rule.metric].definition}")
    lines.append(f"You receive this as a member of the {rule.owner_role} role (alert rule '{rule.name}').")
    body = "\n".join(lines)
    alert.notified_value, alert.notified_at = value, now
    alert.notification_count += 1
    alert.full_clean()
    alert.save()
    notification = AlertNotification.objects.create(
        alert=alert,
        kind=kind,
        role=rule.owner_role,
        recipients=recipients,
        subject=subject,
        body=body,
        value=value,
        sent_at=now,
    )
    if recipients:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    else:
        logger.warning("Alert '%s' has nobody to notify: no active member of %s has an email", subject, rule.owner_role)
    return notification


def _record_breach(*, rule: AlertRule, key: str, subject: str, value: Decimal, unit: str, now, **where) -> bool:
    """Open and notify an alert for a new breach, notify again only if it got worse; True when an email went out."""
    alert = Alert.objects.select_for_update().filter(rule=rule, subject_key=key).first()
    if alert is None:
        alert = Alert(rule=rule, subject_key=key, subject=subject, current_value=value, first_breached_at=now, **where)
        _notify(alert=alert, kind=AlertNotification.Kind.BREACH, value=value, unit=unit, now=now)
        return True
    if alert.notified_value is None or rule.worse_than(value, alert.notified_value):
        alert.status, alert.cleared_at, alert.subject, alert.current_value = Alert.Status.OPEN, None, subject, value
        _notify(alert=alert, kind=AlertNotification.Kind.WORSENED, value=value, unit=unit, now=now)
        return True
    save_if_changed(alert, status=Alert.Status.OPEN, cleared_at=None, subject=subject, current_value=value)
    return False


def _clear(alerts, *, now) -> int:
    cleared = 0
    for alert in alerts:
        cleared += save_if_changed(alert, status=Alert.Status.CLEARED, cleared_at=now)
    return cleared


def _metric_subject(value: MetricValue) -> tuple[str, str]:
    entity = value.legal_entity.code if value.legal_entity_id else "firm"
    key = f"{value.metric}:{entity}:{value.period:%Y-%m}:{value.currency or '-'}"
    where = "the firm" if not value.legal_entity_id else value.legal_entity.code
    money = f" ({value.currency})" if value.currency else ""
    return key, f"{DEFINITIONS[value.metric].name} for {where}, {value.period:%Y-%m}{money}"


def _evaluate_metric_rule(rule: AlertRule, *, periods: list[Period], now) -> dict:
    values = selectors.metric_value_list().filter(metric=rule.metric, period__in=[p.start for p in periods])
    if rule.legal_entity_id:
        values = values.filter(legal_entity_id=rule.legal_entity_id)
    elif rule.firm_wide:
        values = values.filter(legal_entity__isnull=True)
    if rule.currency:
        values = values.filter(currency=rule.currency)
    unit = DEFINITIONS[rule.metric].unit
    notified, breaching = 0, set()
    for value in values:  # the figures of a few periods: one per entity and currency, not per record
        if not rule.breached_by(value.value):
            continue
        key, subject = _metric_subject(value)
        breaching.add(key)
        notified += _record_breach(
            rule=rule,
            key=key,
            subject=subject,
            value=value.value,
            unit=unit,
            now=now,
            legal_entity_id=value.legal_entity_id,
            period=value.period,
            currency=value.currency,
        )
    starts = [p.start for p in periods]
    # Cleared: what no longer breaches, and the alerts of months before the ones evaluated (those are over).
    stale = (
        Alert.objects.select_for_update()
        .filter(Q(period__in=starts) | Q(period__lt=min(starts)), rule=rule, status=Alert.Status.OPEN)
        .exclude(subject_key__in=breaching)
    )
    return {"notified": notified, "cleared": _clear(stale, now=now)}


def _evaluate_discrepancy_rule(rule: AlertRule, *, now) -> dict:
    discrepancies = (
        Discrepancy.objects.filter(status=Discrepancy.Status.OPEN, value_at_risk__gt=rule.threshold)
        .exclude(check_type__in=ROLLUP_CHECKS)  # the per-invoice discrepancy behind a roll-up is notified itself
        .select_related("legal_entity")
    )
    if rule.legal_entity_id:
        discrepancies = discrepancies.filter(legal_entity_id=rule.legal_entity_id)
    if rule.currency:
        discrepancies = discrepancies.filter(reporting_currency=rule.currency)
    notified, breaching = 0, set()
    for discrepancy in discrepancies.iterator(chunk_size=500):  # only those above a high-value threshold
        key = f"discrepancy:{discrepancy.pk}"
        breaching.add(key)
        entity = f" ({discrepancy.legal_entity.code})" if discrepancy.legal_entity_id else ""
        subject = f"{discrepancy.get_check_type_display()} {discrepancy.business_key}{entity}, {discrepancy.period}"
        notified += _record_breach(
            rule=rule,
            key=key,
            subject=subject,
            value=discrepancy.value_at_risk,
            unit=Unit.MONEY,
            now=now,
            legal_entity_id=discrepancy.legal_entity_id,
            period=Period.parse(discrepancy.period).start,
            currency=discrepancy.reporting_currency,
        )
    stale = (
        Alert.objects.select_for_update().filter(rule=rule, status=Alert.Status.OPEN).exclude(subject_key__in=breaching)
    )
    return {"notified": notified, "cleared": _clear(stale, now=now)}


def alert_rules_evaluate(*, periods: list[Period] | None = None, actor=None, reason: str) -> dict:
    """Check every active rule against the figures of the periods (default: the running month) and the open
    discrepancies; email each breach once, and again only when it worsens."""
    periods = periods or recent_periods(0)
    now = timezone.now()
    totals = {"rules": 0, "notified": 0, "cleared": 0, "failed": 0}
    with audit_context(actor=actor, reason=reason):
        for rule_id in AlertRule.objects.filter(active=True).order_by("pk").values_list("pk", flat=True):
            try:
                with transaction.atomic():
                    rule = AlertRule.objects.select_for_update().get(pk=rule_id)  # one evaluator per rule at a time
                    if rule.kind == AlertRule.Kind.METRIC:
                        result = _evaluate_metric_rule(rule, periods=periods, now=now)
                    else:
                        result = _evaluate_discrepancy_rule(rule, now=now)
            except OSError:  # the mail server refused: nothing of this rule is recorded, the next run tries again
                logger.exception("Alert rule %s could not send its email; it is checked again on the next run", rule_id)
                totals["failed"] += 1
                continue
            totals["rules"] += 1
            totals["notified"] += result["notified"]
            totals["cleared"] += result["cleared"]
    return totals


def metrics_refresh(*, actor=None, reason: str) -> dict:
    """Compute the recent months' figures, then evaluate the alert rules on them (the scheduled job)."""
    periods = recent_periods(getattr(settings, "METRICS_MONTHS_BACK", 1))
    snapshots = metric_values_compute(periods=periods, actor=actor, reason=reason)
    # Earlier months are refreshed for reporting; alerts watch the running month, the one people can still act on.
    result = alert_rules_evaluate(periods=periods[-1:], actor=actor, reason=reason)
    return {"snapshots": len(snapshots), "figures": sum(s.figure_count for s in snapshots), **result}


# --- digest ----------------------------------------------------------------------------------


def _digest_body(role: str, *, day: datetime.date, now) -> tuple[str, int]:
    open_alerts = list(
        selectors.alert_list().filter(rule__owner_role=role, status=Alert.Status.OPEN).order_by("first_breached_at")
    )
    since = now - datetime.timedelta(days=1)
    cleared = selectors.alert_list().filter(rule__owner_role=role, cleared_at__gte=since).count()
    lines = [f"Daily digest for the {role} role, {day.isoformat()}.", ""]
    if open_alerts:
        lines.append(f"{len(open_alerts)} open alert(s):")
        for alert in open_alerts:
            unit = DEFINITIONS[alert.rule.metric].unit if alert.rule.metric else Unit.MONEY
            age = (now - alert.first_breached_at).days
            lines.append(
                f"- {alert.subject}: {_format(alert.current_value, unit, alert.currency)} "
                f"(rule '{alert.rule.name}', open {age} day(s))"
            )
    else:
        lines.append("No open alerts.")
    lines.append(f"Cleared in the last 24 hours: {cleared}.")
    current = Period.of(day)
    figures = (
        selectors.metric_value_list().filter(period=current.start).order_by("metric", "legal_entity__code", "currency")
    )
    if figures:
        lines += ["", f"Current figures for {current.label}:"]
        for value in figures:
            definition = DEFINITIONS[value.metric]
            where = value.legal_entity.code if value.legal_entity_id else "firm"
            lines.append(f"- {definition.name}, {where}: {_format(value.value, definition.unit, value.currency)}")
    return "\n".join(lines), len(open_alerts)


def alert_digest_send(*, day: datetime.date | None = None, actor=None, reason: str) -> list[AlertNotification]:
    """Send each role that owns an active alert rule its digest for the day, once (a rerun sends nothing)."""
    now = timezone.now()
    day = day or timezone.localdate(now)
    roles = sorted(set(AlertRule.objects.filter(active=True).values_list("owner_role", flat=True)))
    sent = []
    with audit_context(actor=actor, reason=reason):
        for role in roles:
            with transaction.atomic():
                if AlertNotification.objects.filter(
                    kind=AlertNotification.Kind.DIGEST, role=role, digest_date=day
                ).exists():
                    continue
                body, open_count = _digest_body(role, day=day, now=now)
                recipients = _role_recipients(role)
                subject = f"Integration Console digest {day.isoformat()}: {open_count} open alert(s) for {role}"
                notification = AlertNotification.objects.create(
                    kind=AlertNotification.Kind.DIGEST,
                    role=role,
                    digest_date=day,
                    recipients=recipients,
                    subject=subject,
                    body=body,
                    sent_at=now,
                )
                if recipients:
                    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
                sent.append(notification)
    return sent
