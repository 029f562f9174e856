from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE catalog_priceagreement
    ADD CONSTRAINT agreement_no_overlap
    EXCLUDE USING gist (
        customer_id WITH =,
        service_id WITH =,
        daterange(valid_from, valid_to, '[]') WITH &&
    );
"""
DROP = "ALTER TABLE catalog_priceagreement DROP CONSTRAINT IF EXISTS agreement_no_overlap;"


def add_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    """On PostgreSQL the database itself refuses overlapping agreements of one customer and service.

    Elsewhere catalog.services checks under a row lock on the customer.
    """

    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(add_exclusion, drop_exclusion)]
