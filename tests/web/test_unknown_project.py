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


def test_the_issue_page_says_why_a_key_of_an_unknown_project_shows_nothing(server: Server) -> None:
    assert server.cli("tracker", "project", "PAGE", "Page").returncode == 0
    with server.client() as client:
        page = client.get("/issues/OTHER-7").text
        known = client.get("/issues/PAGE-7").text
    assert "OTHER is not a project of the tracker" in page and "devlink tracker project OTHER" in page
    assert "Nothing mentions OTHER-7 yet" not in page
    assert "Nothing mentions PAGE-7 yet" in known and "not a project of the tracker" not in known
