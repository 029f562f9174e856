"""The fuzzer's real ids cover every path of the schema that holds an id, with the demo's data."""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from fixtures.demo import seed_demo
from tests.fuzz import prepare

pytestmark = pytest.mark.django_db


def test_every_path_with_an_id_gets_the_demos_ids(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    seed_demo()
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    targets = prepare.targets()

    assert set(targets) == {path for path in paths if "{" in path}
    for path, choices in targets.items():
        assert choices, path
        for choice in choices:
            assert set(choice) == {part.strip("{}") for part in path.split("/") if part.startswith("{")}, path
    assert len(targets["/api/bills/{id}/approval-attachments/{action_id}"]) >= 2  # with a file, and one without
    assert all(prepare.body_values().values())


def test_each_role_file_holds_a_token_that_signs_in(settings, tmp_path, client):
    settings.MEDIA_ROOT = tmp_path / "media"
    seed_demo()

    prepare.main(tmp_path)

    for role in prepare.ROLES:
        token = json.loads((tmp_path / f"{role}.json").read_text())["token"]
        me = client.get("/api/invoices", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, (role, me.content)
