# Partial indexes for setting credit against open invoices (ledger.services.credit): each holds only the rows
# the look-up wants (open invoices; payments with credit left), so it costs the same after years of history.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0005_billing_run_customers"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("status__in", ["issued", "overdue"])),
                fields=["customer", "due_date", "issued_at", "id"],
                name="invoice_open_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("unallocated__gt", 0)),
                fields=["customer", "received_at", "id"],
                name="payment_credit_idx",
            ),
        ),
    ]
