"""Sign-in now matches the stored email exactly (accounts.models.canonical_email): store every email that way."""

import unicodedata

from django.db import migrations


def store_canonical_emails(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for user in User.objects.only("pk", "email").iterator():
        canonical = unicodedata.normalize("NFKC", user.email).strip().lower()
        if canonical != user.email:
            User.objects.filter(pk=user.pk).update(email=canonical)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_history_of_user_roles"),
    ]

    operations = [
        migrations.RunPython(store_canonical_emails, migrations.RunPython.noop),
    ]
