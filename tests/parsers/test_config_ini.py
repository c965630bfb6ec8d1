"""The agent's configuration, option by option, and the promise that no secret in it ever
becomes a fact: passwords, tokens, keys and URL credentials are masked before anything is
built, and the cited line is masked too."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import config_ini as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "config_ini"
CASES = [
    "hotsos/etc/neutron/dhcp_agent.ini",
    "hotsos/etc/neutron/neutron.conf",
    "hotsos/etc/neutron/plugins/ml2/openvswitch_agent.ini",
]


def run(name: str, text: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1))))


def options(facts):
    return {(f.section, f.key): f.value for f in facts if isinstance(f, F.ConfigValue)}


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_dhcp_agent_options():
    facts = run("hotsos/etc/neutron/dhcp_agent.ini")
    o = options(facts)
    assert o[("DEFAULT", "interface_driver")] == "openvswitch"
    assert o[("DEFAULT", "dhcp_driver")] == "neutron.agent.linux.dhcp.Dnsmasq"
    assert o[("DEFAULT", "enable_isolated_metadata")] == "True"
    first = next(f for f in facts if f.key == "interface_driver")
    assert first.file == "hotsos/etc/neutron/dhcp_agent.ini" and first.origin.line == 10
    assert not any(isinstance(f, F.Unparsed) for f in facts)


def test_sosreport_masked_values_stay_masked():
    o = options(run("hotsos/etc/neutron/neutron.conf"))
    assert o[("DEFAULT", "transport_url")] == "*********"
    assert o[("AGENT", "root_helper")] == "sudo neutron-rootwrap /etc/neutron/rootwrap.conf"


SECRETS = ["S3cr3t-rabbit", "db-Pa55word", "admin-token-9f8e", "metadata-shared-xyz",
           "memcache-k3y", "keystone-pw", "second-rabbit-pw", "inline-pw-77"]
PLANTED = f"""[DEFAULT]
transport_url = rabbit://neutron:{SECRETS[0]}@10.20.0.11:5672,neutron:{SECRETS[6]}@10.20.0.12:5672/
admin_token = {SECRETS[2]}
interface_driver = openvswitch
ssl_key_file = /etc/neutron/ssl/key.pem

[database]
connection = mysql+pymysql://neutron:{SECRETS[1]}@10.20.0.5/neutron?charset=utf8

[keystone_authtoken]
password = {SECRETS[5]}
memcache_secret_key = {SECRETS[4]}
token_cache_time = 300

[agent]
metadata_proxy_shared_secret = {SECRETS[3]}
extra = host=db;password={SECRETS[7]}
"""


def test_planted_secrets_never_reach_the_facts():
    facts = run("neutron.conf", PLANTED)
    blob = F.to_json(facts).decode()
    for secret in SECRETS:
        assert secret not in blob
    o = options(facts)
    assert o[("DEFAULT", "transport_url")] == \
        "rabbit://neutron:***@10.20.0.11:5672,neutron:***@10.20.0.12:5672/"
    assert o[("database", "connection")] == \
        "mysql+pymysql://neutron:***@10.20.0.5/neutron?charset=utf8"
    assert o[("DEFAULT", "admin_token")] == "***"
    assert o[("keystone_authtoken", "password")] == "***"
    assert o[("keystone_authtoken", "memcache_secret_key")] == "***"
    assert o[("agent", "metadata_proxy_shared_secret")] == "***"
    assert o[("agent", "extra")] == "host=db;password=***"
    # paths and switches that only look like secrets are kept
    assert o[("DEFAULT", "ssl_key_file")] == "/etc/neutron/ssl/key.pem"
    assert o[("keystone_authtoken", "token_cache_time")] == "300"
    assert o[("DEFAULT", "interface_driver")] == "openvswitch"
    cited = next(f for f in facts if f.key == "transport_url").origin.text
    assert cited == "transport_url = rabbit://neutron:***@10.20.0.11:5672,neutron:***@10.20.0.12:5672/"


def test_lines_that_are_not_understood_are_not_cited():
    text = "password = before-any-section\n[DEFAULT]\n%%% junk {SECRET}\n"
    facts = run("x.conf", text)
    assert all(isinstance(f, F.Unparsed) and f.origin.text is None for f in facts)
    assert "before-any-section" not in F.to_json(facts).decode()


def test_multi_line_values_and_comments():
    text = "[DEFAULT]\n# a comment\n; another\nfoo = a\n  b\nbar: c\n"
    o = options(run("x.ini", text))
    assert o == {("DEFAULT", "foo"): "a\nb", ("DEFAULT", "bar"): "c"}


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("rabbit_password", True), ("admin_token", True), ("api_key", True),
    ("metadata_proxy_shared_secret", True), ("key", True), ("ssl_key_file", False),
    ("token_cache_time", False), ("auth_type", False), ("interface_driver", False),
])
def test_secret_keys(key, secret):
    assert P.is_secret_key(key) is secret


def test_registry():
    assert parsers.for_path("sos/etc/neutron/dhcp_agent.ini") is P
    assert parsers.for_path("sos/etc/neutron/plugins/ml2/ml2_conf.ini") is P
    assert parsers.for_path("/etc/nova/nova.conf") is P
    assert parsers.for_path("/etc/neutron/dnsmasq-neutron.conf") is not P


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    run("fuzz.ini", text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
               min_size=4))
@settings(max_examples=200, deadline=None)
def test_any_password_value_is_masked(secret):
    secret = secret.strip()
    if len(secret) < 4 or set(secret) == {"*"}:
        return
    facts = run("x.conf", f"[DEFAULT]\nrabbit_password = {secret}\n")
    for f in facts:  # what a fact carries from the input: the value and the cited line
        assert secret not in (getattr(f, "value", "") or "")
        assert secret not in (f.origin.text or "")


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz.ini", data.decode("utf-8", errors="replace"))
