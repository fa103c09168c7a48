from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from viewer.tables import format_value, summary_rows, table_columns
from viewer.thumbnails import cell_thumbnails

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
    """Report rows as a table with headers naming each quantity and its unit. A cell a row
    annotates in ``row["_notes"]`` shows "–" with a footnote mark; the notes follow the table."""
    if not rows:
        return mark_safe('<p class="muted">No data yet.</p>')
    columns = table_columns(rows)
    notes: list[str] = []

    def cell(row, key):
        note = (row.get("_notes") or {}).get(key)
        if note is None:
            return format_html('<td class="num">{}</td>', format_value(row.get(key)))
        if note not in notes:
            notes.append(note)
        n = notes.index(note) + 1
        return format_html(
            '<td class="num">–<sup><a href="#note-{}" class="note-ref">{}</a></sup></td>',
            n,
            n,
        )

    head = format_html_join("", "<th>{}</th>", ((h,) for _, h in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((mark_safe("".join(cell(r, k) for k, _ in columns)),) for r in rows),
    )
    table = format_html(
        '<table class="table summary-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        head,
        body,
    )
    if not notes:
        return table
    footnotes = format_html_join(
        "",
        '<li id="note-{}">{}</li>',
        ((i, note) for i, note in enumerate(notes, start=1)),
    )
    return format_html('{}<ol class="table-notes small muted">{}</ol>', table, footnotes)


@register.inclusion_tag("viewer/_thumbnails.html")
def cell_map_thumbnails(project):
    """Each cell's latest Li and porosity maps as small pictures linking to their results."""
    return {"rows": cell_thumbnails(project)}
