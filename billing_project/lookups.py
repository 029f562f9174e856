"""`field__in_array=[...]`: membership in a long list of values sent as one array parameter on PostgreSQL
(`= ANY(%s)`), instead of a placeholder per value (`IN (%s, %s, …)`), which Django and the driver prepare, quote
and parse one by one: a CSM's thousand customer ids cost milliseconds in every statement that names them. The
plan is the same (PostgreSQL reads an IN list as `= ANY(ARRAY[…])`). Other databases get the IN list.

Registered on every field and foreign key when this module is imported (reports.kpis imports it).
"""

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject, Lookup


class InArray(Lookup):
    lookup_name = "in_array"

    def get_prep_lookup(self):
        if not isinstance(self.rhs, list | tuple | set | frozenset):
            raise TypeError(f"__in_array takes a list, tuple or set, not {type(self.rhs).__name__}")
        field = self.lhs.output_field
        return [field.get_prep_value(value) for value in self.rhs]

    def as_sql(self, compiler, connection):
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


Field.register_lookup(InArray)
ForeignObject.register_lookup(InArray)  # a foreign key's lookups are its own
