"""`verify lists import / export / update-disposable`, on both databases."""

from __future__ import annotations

import pytest
from sqlmodel import select

from verify import cli
from verify.engine.lists import DISPOSABLE_LIST
from verify.intel.providers import disposable_seed
from verify.store import lengths
from verify.store.lists import add_list_entries, get_list, import_list_entries
from verify.store.models import ListEntry


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(cli.main, list(args), catch_exceptions=False)

    return invoke


def entries_of(services, name: str) -> dict[str, ListEntry]:
    with services.database.transaction() as session:
        list_def = get_list(name, session=session)
        return {row.value: row for row in session.exec(select(ListEntry).where(ListEntry.list_id == list_def.id))}


def test_import_text_then_export_round_trips(run, services, tmp_path):
    source = tmp_path / "wave.txt"
    source.write_text("# campaign 42\nEvil.Example\nmx1.evil.example.  # a subdomain\n\nbad-actor.example\nevil.example\n", encoding="utf-8")
    result = run("lists", "import", "blocked-domains", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "added 3, updated 0"
    stored = entries_of(services, "blocked-domains")
    assert {row.source for row in stored.values()} == {"file:wave.txt"}
    exported = run("lists", "export", "blocked-domains")
    assert exported.exit_code == 0
    assert exported.stdout.splitlines() == ["bad-actor.example", "evil.example", "mx1.evil.example"]

    copy = tmp_path / "copy.txt"
    copy.write_text(exported.stdout, encoding="utf-8")
    assert run("lists", "import", "blocked-domains", str(copy)).stdout.strip() == "added 0, updated 3"  # a new source
    assert run("lists", "import", "blocked-domains", str(copy)).stdout.strip() == "added 0, updated 0"
    country_list = "challenged-countries"
    countries = tmp_path / "countries.txt"
    countries.write_text("kp\nIR\n", encoding="utf-8")
    run("lists", "import", country_list, str(countries))
    assert run("lists", "export", country_list).stdout.splitlines() == ["IR", "KP"]


def test_import_csv_with_reason_and_expiry(run, services, tmp_path):
    source = tmp_path / "ips.csv"
    source.write_text(
        "value,reason,expires_at\n"
        "203.0.113.0/24,hosting range,2099-01-01T00:00:00Z\n"
        "198.51.100.7,,\n"
        "2001:DB8::1,wave 2\n",
        encoding="utf-8",
    )
    result = run("lists", "import", "blocked-ips", str(source))
    assert result.exit_code == 0, result.output
    stored = entries_of(services, "blocked-ips")
    assert set(stored) == {"203.0.113.0/24", "198.51.100.7", "2001:db8::1"}
    assert stored["203.0.113.0/24"].reason == "hosting range" and stored["203.0.113.0/24"].expires_at.year == 2099
    assert stored["198.51.100.7"].reason is None and stored["198.51.100.7"].expires_at is None
    assert stored["2001:db8::1"].reason == "wave 2"
    assert {row.source for row in stored.values()} == {"file:ips.csv"}


def test_import_with_a_bad_value_changes_nothing_and_names_the_lines(run, services, tmp_path):
    source = tmp_path / "asns.txt"
    source.write_text("AS64500\nASx\n64501\nnot-a-number\n", encoding="utf-8")
    result = run("lists", "import", "blocked-asns", str(source))
    assert result.exit_code != 0
    assert "line 2" in result.output and "line 4" in result.output and "line 1" not in result.output
    assert entries_of(services, "blocked-asns") == {}


def test_import_and_export_of_an_unknown_list_fail(run, tmp_path):
    source = tmp_path / "x.txt"
    source.write_text("a.example\n", encoding="utf-8")
    assert run("lists", "import", "nope", str(source)).exit_code != 0
    assert "no list named" in run("lists", "export", "nope").output


def test_bad_csv_expiry_is_refused(run, services, tmp_path):
    source = tmp_path / "old.csv"
    source.write_text("a.example,old,2001-01-01T00:00:00Z\n", encoding="utf-8")
    result = run("lists", "import", "blocked-domains", str(source))
    assert result.exit_code != 0 and "in the past" in result.output
    assert entries_of(services, "blocked-domains") == {}


def test_update_disposable_replaces_package_entries_and_keeps_hand_added_ones(run, services):
    domains, source = disposable_seed()
    with services.database.transaction() as session:
        list_def = get_list(DISPOSABLE_LIST, session=session)
        add_list_entries(list_def, ["hand-added.example"], source="key:alice-admin", actor="alice-admin", session=session)
        import_list_entries(list_def, [("gone-from-package.example", None, None)], source="package:disposable-email-domains==0.0.1",
                                    actor="system", session=session)
    result = run("lists", "update-disposable")
    assert result.exit_code == 0, result.output
    assert source in result.output
    stored = entries_of(services, DISPOSABLE_LIST)
    assert "hand-added.example" in stored and stored["hand-added.example"].source == "key:alice-admin"
    assert "gone-from-package.example" not in stored
    assert "mailinator.com" in stored and stored["mailinator.com"].source == source
    assert "removed" in result.output
    removed = int(result.stdout.split("removed ")[1].split()[0].rstrip(","))
    assert removed >= 1
    again = run("lists", "update-disposable")
    assert f"{source}: added 0, removed 0" in again.output


def test_a_file_with_a_long_name_is_imported_and_its_provenance_fits(run, services, tmp_path):
    source = tmp_path / ("wave-" + "w" * 240 + ".txt")
    source.write_text("long-name.example\n", encoding="utf-8")
    result = run("lists", "import", "blocked-domains", str(source))
    assert result.exit_code == 0, result.output
    stored = entries_of(services, "blocked-domains")["long-name.example"]
    assert stored.source.startswith("file:wave-www") and len(stored.source) == lengths.ENTRY_SOURCE


def test_csv_export_keeps_reason_expiry_and_source_and_reads_back(run, services, tmp_path):
    source = tmp_path / "ips.csv"
    source.write_text("203.0.113.0/24,hosting range,2099-01-01T00:00:00Z\n198.51.100.7,,\n", encoding="utf-8")
    run("lists", "import", "blocked-ips", str(source))
    exported = run("lists", "export", "blocked-ips", "--format", "csv")
    assert exported.stdout.splitlines() == [
        "value,reason,expires_at,source",
        "198.51.100.7,,,file:ips.csv",
        "203.0.113.0/24,hosting range,2099-01-01T00:00:00Z,file:ips.csv",
    ]
    again = tmp_path / "again.csv"
    again.write_text(exported.stdout, encoding="utf-8")
    assert run("lists", "import", "blocked-ips", str(again)).stdout.strip() == "added 0, updated 2"
    assert entries_of(services, "blocked-ips")["203.0.113.0/24"].reason == "hosting range"
