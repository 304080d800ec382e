"""Server-rendered SVG charts for the home page: a 30-day trend and a histogram; no JavaScript library."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 1320, 170, 34, 20, 10


def _scale(peak: int) -> int:
    return max(peak, 1)


def trend_chart(days: list[dict], *, series=(("total", "line", "started"), ("failed", "line bad", "needed a person"))):
    """Lines per day (x: the last 30 days, y: counts), with the peak on the axis and each day's figures as tooltips."""
    peak = _scale(max((day[key] for day in days for key, _, _ in series), default=0))
    inner_w, inner_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = inner_w / max(len(days) - 1, 1)

    def x(i):
        return PAD_LEFT + i * step

    def y(value):
        return PAD_TOP + inner_h - inner_h * value / peak

    lines = []
    for key, css, _label in series:
        points = " ".join(f"{x(i):.1f},{y(day[key]):.1f}" for i, day in enumerate(days))
        lines.append(format_html('<polyline class="{}" points="{}"/>', css, points))
    tips = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="transparent">'
        "<title>{}: {} started, {} needed a person</title></rect>",
        (
            (
                f"{x(i) - step / 2:.1f}",
                PAD_TOP,
                f"{step:.1f}",
                inner_h,
                day["day"].isoformat(),
                day["total"],
                day["failed"],
            )
            for i, day in enumerate(days)
        ),
    )
    labels = ""
    if days:
        labels = format_html(
            '<text x="{}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>',
            PAD_LEFT,
            HEIGHT - 4,
            days[0]["day"].strftime("%d %b"),
            WIDTH - 8,
            HEIGHT - 4,
            days[-1]["day"].strftime("%d %b"),
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{aria}">'
        '<line class="axis" x1="{pl}" y1="{base}" x2="{right}" y2="{base}"/>'
        '<line class="axis" x1="{pl}" y1="{top}" x2="{pl}" y2="{base}"/>'
        '<text x="{tx}" y="{ty}" text-anchor="end">{peak}</text><text x="{tx}" y="{base}" text-anchor="end">0</text>'
        "{lines}{tips}{labels}</svg>",
        w=WIDTH,
        h=HEIGHT,
        aria=f"Transactions per day over {len(days)} days",
        pl=PAD_LEFT,
        base=PAD_TOP + inner_h,
        right=WIDTH - 8,
        top=PAD_TOP,
        tx=PAD_LEFT - 4,
        ty=PAD_TOP + 8,
        peak=peak,
        lines=mark_safe("".join(lines)),  # noqa: S308 - built with format_html above
        tips=tips,
        labels=labels,
    )


def histogram(buckets: list[dict]):
    """Bars per bucket, each a link to the list behind it; the oldest buckets in the alarm colour."""
    width, height, bottom = 360, 150, 22
    peak = _scale(max((b["count"] for b in buckets), default=0))
    slot = (width - 10) / max(len(buckets), 1)
    bars = []
    for i, bucket in enumerate(buckets):
        bar_h = (height - bottom - 14) * bucket["count"] / peak
        x = 5 + i * slot + 6
        css = "bar old" if i >= len(buckets) - 2 else "bar"
        bars.append(
            format_html(
                '<a href="{url}"><rect class="{css}" x="{x}" y="{y}" width="{w}" height="{h}">'
                "<title>{label}: {count}</title></rect>"
                '<text x="{cx}" y="{ty}" text-anchor="middle">{count}</text>'
                '<text x="{cx}" y="{ly}" text-anchor="middle">{label}</text></a>',
                url=bucket["url"],
                css=css,
                x=f"{x:.1f}",
                y=f"{height - bottom - bar_h:.1f}",
                w=f"{slot - 12:.1f}",
                h=f"{bar_h:.1f}",
                label=bucket["label"],
                count=bucket["count"],
                cx=f"{x + (slot - 12) / 2:.1f}",
                ty=f"{height - bottom - bar_h - 3:.1f}",
                ly=height - 6,
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="Open exceptions by age">{}</svg>',
        width,
        height,
        mark_safe("".join(bars)),  # noqa: S308 - each bar built with format_html
    )
