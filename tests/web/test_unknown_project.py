"""The development document over HTTP says when a key's project is not in the tracker (and so never links)."""

from servers import Server


def test_development_document_flags_a_key_of_an_unknown_project(server: Server) -> None:
    with server.client() as client:
        before = client.get("/api/v1/issues/KAFKA-1/development").json()
        assert (before["project_known"], before["notice"]) == (True, None)  # no projects yet: every key links

        assert server.cli("tracker", "project", "DEMO", "Demo").returncode == 0
        unknown = client.get("/api/v1/issues/KAFKA-1/development")
        known = client.get("/api/v1/issues/DEMO-1/development").json()

    assert unknown.status_code == 200
    assert unknown.json()["project_known"] is False
    assert unknown.json()["notice"].startswith("KAFKA is not a project of the tracker, so KAFKA keys are not linked")
    assert (known["project_known"], known["notice"]) == (True, None)
