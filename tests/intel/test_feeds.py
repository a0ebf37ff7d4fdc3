"""Feed formats: each provider's real format read into list values; garbage refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify.intel.feeds import FORMATS, FeedInvalid, feed_values

SAMPLES = Path(__file__).resolve().parents[1] / "support" / "feeds"


def values(name: str, feed_format: str, kind: str = "ip") -> tuple[set[str], int]:
    found = feed_values((SAMPLES / name).read_bytes(), feed_format=feed_format, kind=kind, rules={})
    assert len(found.values) == len(set(found.values))  # duplicates within a file are stored once
    return set(found.values), found.skipped


@pytest.mark.parametrize(
    "name, feed_format, kind, expected, skipped",
    [
        ("tor-bulk-exit-list.txt", "lines", "ip", {"102.130.113.9", "185.220.101.9", "2a0b:f4c2::20", "2a0b:f4c2:2::1"}, 0),
        ("tor-bulk-exit-list.txt", "tor", "ip", {"102.130.113.9", "199.195.251.84"}, 0),
        ("tor-exit-addresses.txt", "tor", "ip", {"162.247.74.201", "185.220.101.9", "192.42.116.16", "192.42.116.17", "2a0b:f4c2::20"}, 0),
        ("aws-ip-ranges.json", "aws", "ip", {"3.5.140.0/22", "15.230.56.104/31", "54.239.0.0/16", "2600:1f14::/35", "2a05:d07a:a000::/40"}, 0),
        ("google-cloud.json", "google-cloud", "ip", {"34.1.208.0/20", "2600:1900:8000::/44", "35.186.0.0/17"}, 0),
        ("azure-service-tags.json", "azure", "ip", {"4.145.74.52/30", "13.66.60.119", "2603:1030:c06:1::480/121", "13.107.246.0/24"}, 0),
        ("oracle-public-ip-ranges.json", "oracle", "ip", {"129.146.0.0/21", "130.61.0.0/16", "138.1.0.0/20"}, 0),
        ("disposable_email_blocklist.conf", "lines", "email_domain", {"0-mail.com", "mailinator.com", "zzrgg.com"}, 0),
        # the header row and one broken row are skipped and counted, not fatal
        ("campaign-blocklist.csv", "csv", "ip", {"198.51.100.0/24", "203.0.113.7", "2001:db8:4::/48"}, 2),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value else None,
)
def test_each_format_reads_its_provider_file(name, feed_format, kind, expected, skipped):
    found, bad = values(name, feed_format, kind)
    assert expected <= found
    assert bad == skipped


def test_exact_counts_of_the_cloud_samples():
    assert len(values("aws-ip-ranges.json", "aws")[0]) == 9  # one prefix is listed twice (two services)
    assert len(values("azure-service-tags.json", "azure")[0]) == 10  # 13.69.0.0/17 is in two tags
    assert len(values("tor-exit-addresses.txt", "tor")[0]) == 5
    assert len(values("oracle-public-ip-ranges.json", "oracle")[0]) == 5


@pytest.mark.parametrize("feed_format", [f for f in FORMATS if f not in ("lines", "csv", "tor")])
@pytest.mark.parametrize(
    "body",
    [b"<html><body>502 Bad Gateway</body></html>", b"", b"\xff\xfe\x00garbage", json.dumps({"unrelated": []}).encode(), b"[1, 2, 3]"],
    ids=["html", "empty", "binary", "other-shape", "array"],
)
def test_json_formats_refuse_documents_of_another_shape(feed_format, body):
    with pytest.raises(FeedInvalid):
        feed_values(body, feed_format=feed_format, kind="ip", rules={})


@pytest.mark.parametrize("feed_format", ["lines", "csv", "tor"])
@pytest.mark.parametrize(
    "body",
    [b"<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>\n", b"", b"# nothing here\n", b"\x89PNG\r\n\x1a\n\x00\x00"],
    ids=["html-page", "empty", "only-comments", "binary"],
)
def test_text_formats_refuse_garbage_and_empty_downloads(feed_format, body):
    with pytest.raises(FeedInvalid):
        feed_values(body, feed_format=feed_format, kind="ip", rules={})


def test_a_few_bad_lines_are_skipped_most_bad_lines_refuse_the_file():
    few = b"192.0.2.1\n192.0.2.2\nnot-an-ip\n198.51.100.0/24\n"
    found = feed_values(few, feed_format="lines", kind="ip", rules={})
    assert found.values == ["192.0.2.1", "192.0.2.2", "198.51.100.0/24"] and found.skipped == 1
    assert "not-an-ip" in found.examples[0]
    most = b"192.0.2.1\nnope\nalso nope\n10.0.0.5/8\n"
    with pytest.raises(FeedInvalid, match="3 of 4 values are not valid ip entries"):
        feed_values(most, feed_format="lines", kind="ip", rules={})


def test_values_are_normalised_as_the_lists_normalise_them():
    found = feed_values(b"Mailinator.COM.\nxn--bcher-kva.example\nb\xc3\xbccher.example\n", feed_format="lines", kind="email_domain", rules={})
    assert found.values == ["mailinator.com", "xn--bcher-kva.example"]
    found = feed_values(b"2001:DB8:0:0::1\n198.51.100.7/32\n", feed_format="lines", kind="ip", rules={})
    assert found.values == ["2001:db8::1", "198.51.100.7"]
