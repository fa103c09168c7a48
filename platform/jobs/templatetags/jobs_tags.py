from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@register.simple_tag
def table_html(rows):
    """A list of dicts as an HTML table (columns: union of keys in first-seen order)."""
    if not rows:
        return mark_safe('<p class="muted">No data yet.</p>')
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    head = format_html_join("", "<th>{}</th>", ((h.replace("_", " "),) for h in header))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((_cell(r.get(h)),) for h in header)),)
            for r in rows
        ),
    )
    return format_html(
        '<table class="table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body
    )
