"""PostgreSQL: the service analyses a never-analysed assessments table itself, so that the
history statements, planned once per connection, are planned with statistics (a plan made
without them walked the wrong index until autovacuum came round)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


def never_analysed(services) -> bool:
    with services.database.engine.connect() as connection:
        return connection.execute(sa.text("SELECT reltuples < 0 FROM pg_class WHERE oid = 'assessments'::regclass")).scalar()


def test_the_table_is_analysed_after_its_first_signups(client, services, assess_headers, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("statistics are PostgreSQL's")
    services.assessor.STATISTICS_EVERY = 3
    assert never_analysed(services)
    for n in range(2):
        assert client.post("/v1/assessments", json={"email": f"s{n}@example-mail.com"}, headers=assess_headers).status_code == 201
    assert never_analysed(services)
    assert client.post("/v1/assessments", json={"email": "s2@example-mail.com"}, headers=assess_headers).status_code == 201
    assert not never_analysed(services)
