from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from viewer.tables import format_value, summary_rows, table_columns

register = template.Library()


@register.simple_tag
def summary_table(summary):
    """A result summary as a three-column table: quantity, value, unit."""
    rows = summary_rows(summary or {})
    if not rows:
        return mark_safe('<p class="muted">No summary.</p>')
    body = format_html_join(
        "", '<tr><th scope="row">{}</th><td class="num">{}</td><td>{}</td></tr>', rows
    )
    return format_html(
        '<table class="table summary-table" id="summary-table"><thead><tr><th>quantity</th>'
        "<th>value</th><th>unit</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


@register.simple_tag
def readable_table(rows):
    """Report rows as a table with headers naming each quantity and its unit."""
    if not rows:
        return mark_safe('<p class="muted">No data yet.</p>')
    columns = table_columns(rows)
    head = format_html_join("", "<th>{}</th>", ((h,) for _, h in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (
                format_html_join(
                    "",
                    '<td class="num">{}</td>',
                    ((format_value(r.get(k)),) for k, _ in columns),
                ),
            )
            for r in rows
        ),
    )
    return format_html(
        '<table class="table summary-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        head,
        body,
    )
