from django.db import migrations


class Migration(migrations.Migration):
    """A partner's single default revenue share is gone: its revenue-share agreements (orders) replaced it, and
    orders' 0004_partner_default_shares_to_agreements carried every non-zero one over first."""

    dependencies = [
        ("catalog", "0005_partner_bank_details"),
        ("orders", "0004_partner_default_shares_to_agreements"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='partner',
            name='partner_share_between_0_and_100',
        ),
        migrations.RemoveField(
            model_name='historicalpartner',
            name='default_revenue_share_percent',
        ),
        migrations.RemoveField(
            model_name='partner',
            name='default_revenue_share_percent',
        ),
    ]
