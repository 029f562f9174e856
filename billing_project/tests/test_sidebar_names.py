"""The sidebar names each list as its page title does (one name per thing)."""

from django.apps import apps
from django.conf import settings
from django.urls import resolve
from django.utils.text import capfirst


def sidebar_lists():
    for group in settings.UNFOLD["SIDEBAR"]["navigation"]:
        for item in group["items"]:
            name = resolve(str(item["link"])).url_name
            if name.endswith("_changelist"):
                app_label, model_name = name.removesuffix("_changelist").split("_", 1)
                yield item["title"], apps.get_model(app_label, model_name)


def test_every_sidebar_list_is_named_as_its_page_title():
    titles = {title: capfirst(model._meta.verbose_name_plural) for title, model in sidebar_lists()}
    assert len(titles) > 20
    assert {title: page for title, page in titles.items() if title != page} == {}


def test_the_admin_says_roles_journal_and_month_end_runs():
    titles = {title for title, _ in sidebar_lists()}
    assert {"Roles", "Journal", "Month-end runs", "Login attempts"} <= titles
