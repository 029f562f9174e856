"""Template filters for the one look (billing_project/formatting.py); built in, so templates need no {% load %}.

{{ invoice.total|money:invoice.currency }}   EUR 1,234.50
{{ line.unit_price|price:currency }}         EUR 0.008
{{ line.quantity|quantity }}                 1,250.5
{{ config.tax_rate|percent }}               20 %   (a fraction)
{{ agreement.percentage|percentage }}        30 %   (in percent)
{{ invoice.issued_at|moment }}               2 Dec 2026, 14:12
{{ invoice.due_date|day }}                   16 Dec 2026
"""

from django import template

from billing_project import formatting

register = template.Library()
register.filter("money", formatting.money)
register.filter("price", formatting.price)
register.filter("quantity", formatting.quantity)
register.filter("percent", formatting.percent)
register.filter("percentage", formatting.percentage)
register.filter("day", formatting.day)
register.filter("moment", formatting.moment)
