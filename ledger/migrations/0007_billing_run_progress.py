# When a run reached each customer, so the admin can tell a run that stalled (ledger.selectors.billing_run_list).
# The column is added empty (rows made before are left so: for them the run's start and history stand in), then
# given its database default, which sets it on every row inserted from now on, however it is inserted.

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0006_credit_lookup_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="billingruncustomer",
            name="created_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="billingruncustomer",
            name="created_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(), editable=False, null=True
            ),
        ),
        migrations.AddIndex(
            model_name="billingruncustomer",
            index=models.Index(fields=["run", "created_at"], name="billing_run_progress_idx"),
        ),
    ]
