"""The admin's shared look: empty lists say why they are empty, the upload page uses unfold's widgets, and a page's
title names the list and the object, not the app."""

import pytest

from accounts.roles import Role

pytestmark = pytest.mark.django_db


def test_an_empty_queue_says_nothing_waits_instead_of_unfolds_generic_text(client, make_user):
    client.force_login(make_user(Role.CUSTOMER_SUCCESS))
    page = client.get("/admin/approvals/awaitingapproval/").content.decode()
    assert "Nothing waits for your approval" in page
    assert "yielded" not in page and "Create a new item" not in page


def test_an_empty_filtered_list_says_nothing_matches_and_offers_to_reset(client, finance_user):
    client.force_login(finance_user)
    page = client.get("/admin/ledger/invoice/", {"q": "INV-1999"}).content.decode()
    assert "Nothing matches" in page and "Reset filters" in page


def test_the_upload_page_uses_unfolds_file_widget_and_switch(client, finance_user):
    client.force_login(finance_user)
    page = client.get("/admin/usage/upload/new/").content.decode()
    assert "Choose file to upload" in page  # unfold's file widget
    assert 'accept=".csv,text/csv"' in page
    assert 'type="checkbox" name="force"' in page


def test_the_page_title_names_the_list_not_the_app(client, finance_user):
    client.force_login(finance_user)
    page = client.get("/admin/ledger/transaction/").content.decode()
    title = page[page.index("<h1") : page.index("</h1>")]
    assert "Journal" in title and "Ledger" not in title
